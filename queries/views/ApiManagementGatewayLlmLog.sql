-- Log Analytics compatibility view named like ApiManagementGatewayLlmLog:
-- one header row per call (messages are whole, never split into pieces).
-- RequestMessages and ResponseMessages are arrays of {role, content}.
SELECT
  COALESCE(request_time, response_time) AS "TimeGenerated",
  COALESCE(correlation_id, request_id) AS "CorrelationId",
  request_id AS "RequestId",
  operation_id AS "OperationName",
  api_version AS "ApiVersion",
  COALESCE(deployment, model, '') AS "DeploymentName",
  model AS "ModelName",
  region AS "Region",
  prompt_tokens AS "PromptTokens",
  completion_tokens AS "CompletionTokens",
  total_tokens AS "TotalTokens",
  -- Beyond the Log Analytics columns: prompt tokens served from the cache.
  cached_tokens AS "CachedTokens",
  is_stream AS "IsStreamCompletion",
  0 AS "SequenceNumber",
  prompt_text AS "RequestMessages",
  json_messages(response_body, response_text) AS "ResponseMessages"
FROM calls
