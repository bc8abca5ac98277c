-- R2: prompt monitoring (seed KQL): every gateway-log column plus model,
-- prompt tokens and the first 100 characters of the first choice as JSON.
SELECT
  g.* EXCLUDE ("__calls_model", "__calls_prompt_tokens", "__calls_completion_tokens", "__calls_total_tokens"),
  json_get(g."BackendResponseBody", 'model') AS model,
  CAST(json_get(g."BackendResponseBody", 'usage', 'prompt_tokens') AS BIGINT) AS prompttokens,
  substr(json_get(g."BackendResponseBody", 'choices', 0), 1, 100) AS prompttext
FROM "ApiManagementGatewayLogs" g
WHERE lower(g."OperationId") IN ('completions_create', 'chatcompletions_create')
  AND g."ResponseCode" = 200
ORDER BY g."TimeGenerated", g."RequestId"
