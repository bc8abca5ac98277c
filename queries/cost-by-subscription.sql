-- R5: cost by subscription against a quota (FinOps KQL). Cost per call comes
-- from the price table (schemas/prices.json or --prices); quotas from
-- --quota (CSV: subscription_id,cost_quota). Defaults to this month.
WITH costs AS (
  SELECT
    subscription_id AS "SubscriptionId",
    SUM(prompt_tokens) AS "PromptTokens",
    SUM(completion_tokens) AS "CompletionTokens",
    SUM(cost) AS "TotalCost",
    MAX(currency) AS "Currency",
    SUM(CASE WHEN cost IS NULL AND total_tokens IS NOT NULL THEN 1 ELSE 0 END) AS "UnpricedCalls"
  FROM calls
  GROUP BY subscription_id
)
SELECT
  c.*,
  q.cost_quota AS "CostQuota",
  CASE
    WHEN q.cost_quota IS NULL THEN 'no quota'
    WHEN c."TotalCost" > q.cost_quota THEN 'over'
    ELSE 'within'
  END AS "Budget"
FROM costs c
LEFT JOIN quotas q ON q.subscription_id = c."SubscriptionId"
ORDER BY c."TotalCost" DESC NULLS LAST, c."SubscriptionId" NULLS LAST
