-- R3: model usage by subscription and deployment (built-in LLM logging KQL).
-- Calls whose dialect names no deployment are grouped under their model.
SELECT
  subscription_id AS "SubscriptionId",
  COALESCE(deployment, model) AS "DeploymentName",
  SUM(prompt_tokens) AS "SumPromptTokens",
  SUM(completion_tokens) AS "SumCompletionTokens",
  SUM(total_tokens) AS "SumTotalTokens"
FROM calls
WHERE COALESCE(deployment, model, '') <> ''
GROUP BY subscription_id, COALESCE(deployment, model)
ORDER BY "SubscriptionId" NULLS LAST, "DeploymentName"
