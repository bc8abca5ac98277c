-- Log Analytics compatibility view: one row per call, named like the
-- ApiManagementGatewayLogs table. BackendResponseBody is the equivalent
-- non-streamed response (reassembled SSE included, with usage reported or
-- estimated), so KQL written for Log Analytics counts streamed calls too;
-- a body that lacks the model or usage gets them from the record (some
-- dialects log them outside the body). CorrelationId falls back to the
-- request id, as in ApiManagementGatewayLlmLog, so the two join per call.
SELECT
  COALESCE(request_time, response_time) AS "TimeGenerated",
  COALESCE(correlation_id, request_id) AS "CorrelationId",
  request_id AS "RequestId",
  'GatewayLogs' AS "Category",
  'Microsoft.ApiManagement/GatewayLogs' AS "OperationName",
  region AS "Region",
  service AS "ServiceName",
  method AS "Method",
  url AS "Url",
  -- The record keeps the backend's id, not the URL APIM called.
  CAST(NULL AS VARCHAR) AS "BackendUrl",
  status_code AS "ResponseCode",
  status_code AS "BackendResponseCode",
  (status_code IS NOT NULL AND status_code < 400) AS "IsRequestSuccess",
  duration_ms AS "TotalTime",
  backend_time_ms AS "BackendTime",
  caller_ip AS "CallerIpAddress",
  api_id AS "ApiId",
  operation_id AS "OperationId",
  product_id AS "ProductId",
  user_id AS "UserId",
  subscription_id AS "ApimSubscriptionId",
  backend AS "BackendId",
  error AS "LastErrorMessage",
  prompt_text AS "RequestBody",
  prompt_text AS "BackendRequestBody",
  json_complete(response_body, model, prompt_tokens, completion_tokens, total_tokens) AS "ResponseBody",
  json_complete(response_body, model, prompt_tokens, completion_tokens, total_tokens) AS "BackendResponseBody",
  usage_source AS "UsageSource",
  dialect AS "Dialect",
  -- Not Log Analytics columns: the record's values of the body's model and
  -- usage, which the KQL planner reads for those paths of the bodies
  -- (ledger-kql's typed::BODY_PATHS) and never shows.
  model AS "__calls_model",
  prompt_tokens AS "__calls_prompt_tokens",
  completion_tokens AS "__calls_completion_tokens",
  total_tokens AS "__calls_total_tokens"
FROM calls
