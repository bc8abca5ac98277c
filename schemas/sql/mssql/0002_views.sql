-- R1, R3 and R5 for SQL tools and Power BI: the named reports of queries/
-- in T-SQL, over the same columns. Written by hand (a change is a new
-- migration with CREATE OR ALTER). A view has no order: order as the
-- report does. Averages are float, as in the lake's reports.

-- R1: token usage by caller IP and model (queries/token-usage-by-ip-model.sql).
CREATE OR ALTER VIEW dbo.token_usage_by_ip_model AS
SELECT
  caller_ip AS ip,
  model,
  SUM(prompt_tokens) AS sum_prompttokens,
  SUM(completion_tokens) AS sum_completiontokens,
  SUM(total_tokens) AS sum_totaltokens,
  AVG(CAST(total_tokens AS float)) AS avg_totaltokens
FROM dbo.calls
WHERE LOWER(operation_id) IN (N'completions_create', N'chatcompletions_create')
  AND status_code = 200
  AND model IS NOT NULL AND model <> N''
GROUP BY caller_ip, model;
GO

-- R3: token usage by subscription and deployment (queries/usage-by-subscription.sql).
CREATE OR ALTER VIEW dbo.usage_by_subscription AS
SELECT
  subscription_id AS SubscriptionId,
  COALESCE(deployment, model) AS DeploymentName,
  SUM(prompt_tokens) AS SumPromptTokens,
  SUM(completion_tokens) AS SumCompletionTokens,
  SUM(total_tokens) AS SumTotalTokens
FROM dbo.calls
WHERE COALESCE(deployment, model, N'') <> N''
GROUP BY subscription_id, COALESCE(deployment, model);
GO

-- "Now" for R5: the session's aoai_ledger.now when set
-- (EXEC sp_set_session_context N'aoai_ledger.now', N'2026-11-30T12:00:00Z'
-- pins it, as --now does for the report), else the current UTC time.
CREATE OR ALTER FUNCTION dbo.ledger_now() RETURNS datetime2(6) AS
BEGIN
  RETURN COALESCE(
    TRY_CONVERT(datetime2(6), CAST(SESSION_CONTEXT(N'aoai_ledger.now') AS nvarchar(64)), 127),
    SYSUTCDATETIME());
END;
GO

-- R5 over [since, until) of request_time; a null bound is open
-- (queries/cost-by-subscription.sql with --since/--until).
CREATE OR ALTER FUNCTION dbo.cost_by_subscription_between(@since datetime2(6), @until datetime2(6))
RETURNS TABLE AS RETURN (
  WITH costs AS (
    SELECT
      subscription_id,
      SUM(prompt_tokens) AS prompt_tokens,
      SUM(completion_tokens) AS completion_tokens,
      SUM(cost) AS total_cost,
      MAX(currency) AS currency,
      SUM(CASE WHEN cost IS NULL AND total_tokens IS NOT NULL THEN 1 ELSE 0 END) AS unpriced
    FROM dbo.calls
    WHERE (@since IS NULL OR request_time >= @since)
      AND (@until IS NULL OR request_time < @until)
    GROUP BY subscription_id
  )
  SELECT
    c.subscription_id AS SubscriptionId,
    c.prompt_tokens AS PromptTokens,
    c.completion_tokens AS CompletionTokens,
    c.total_cost AS TotalCost,
    c.currency AS Currency,
    c.unpriced AS UnpricedCalls,
    q.cost_quota AS CostQuota,
    CASE
      WHEN q.cost_quota IS NULL THEN N'no quota'
      WHEN c.total_cost > q.cost_quota THEN N'over'
      ELSE N'within'
    END AS Budget
  FROM costs c
  LEFT JOIN dbo.subscription_quota q ON q.subscription_id = c.subscription_id
);
GO

-- R5: cost by subscription against its quota, this month (UTC) of dbo.ledger_now().
CREATE OR ALTER VIEW dbo.cost_by_subscription AS
SELECT b.* FROM (
  SELECT CAST(DATEFROMPARTS(YEAR(dbo.ledger_now()), MONTH(dbo.ledger_now()), 1) AS datetime2(6)) AS month_start
) m
CROSS APPLY dbo.cost_by_subscription_between(m.month_start, DATEADD(month, 1, m.month_start)) b;
GO
