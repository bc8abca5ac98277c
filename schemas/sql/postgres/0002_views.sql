-- R1, R3 and R5 for SQL tools and Power BI: the named reports of queries/
-- in PostgreSQL's SQL, over the same columns. Written by hand (a change is
-- a new migration with CREATE OR REPLACE). A view has no order: order as
-- the report does. Sums are bigint, averages double precision, as in the
-- lake's reports.

-- R1: token usage by caller IP and model (queries/token-usage-by-ip-model.sql).
CREATE VIEW token_usage_by_ip_model AS
SELECT
  caller_ip AS ip,
  model,
  SUM(prompt_tokens)::bigint AS sum_prompttokens,
  SUM(completion_tokens)::bigint AS sum_completiontokens,
  SUM(total_tokens)::bigint AS sum_totaltokens,
  AVG(total_tokens::double precision) AS avg_totaltokens
FROM calls
WHERE lower(operation_id) IN ('completions_create', 'chatcompletions_create')
  AND status_code = 200
  AND model IS NOT NULL AND model <> ''
GROUP BY caller_ip, model;

-- R3: token usage by subscription and deployment (queries/usage-by-subscription.sql).
CREATE VIEW usage_by_subscription AS
SELECT
  subscription_id AS "SubscriptionId",
  COALESCE(deployment, model) AS "DeploymentName",
  SUM(prompt_tokens)::bigint AS "SumPromptTokens",
  SUM(completion_tokens)::bigint AS "SumCompletionTokens",
  SUM(total_tokens)::bigint AS "SumTotalTokens"
FROM calls
WHERE COALESCE(deployment, model, '') <> ''
GROUP BY subscription_id, COALESCE(deployment, model);

-- "Now" for R5: the session's aoai_ledger.now when set (SET aoai_ledger.now
-- = '2026-11-30T12:00:00Z' pins it, as --now does for the report), else
-- the transaction's time.
CREATE FUNCTION ledger_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT COALESCE(NULLIF(current_setting('aoai_ledger.now', true), '')::timestamptz, now())
$$;

-- R5 over [since, until) of request_time; a null bound is open
-- (queries/cost-by-subscription.sql with --since/--until).
CREATE FUNCTION cost_by_subscription_between(since timestamptz, until timestamptz)
RETURNS TABLE (
  "SubscriptionId" varchar,
  "PromptTokens" bigint,
  "CompletionTokens" bigint,
  "TotalCost" numeric,
  "Currency" varchar,
  "UnpricedCalls" bigint,
  "CostQuota" numeric,
  "Budget" text
)
LANGUAGE sql STABLE AS $$
  WITH costs AS (
    SELECT
      subscription_id,
      SUM(prompt_tokens)::bigint AS prompt_tokens,
      SUM(completion_tokens)::bigint AS completion_tokens,
      SUM(cost) AS total_cost,
      MAX(currency) AS currency,
      COUNT(*) FILTER (WHERE cost IS NULL AND total_tokens IS NOT NULL) AS unpriced
    FROM calls
    WHERE (since IS NULL OR request_time >= since)
      AND (until IS NULL OR request_time < until)
    GROUP BY subscription_id
  )
  SELECT
    c.subscription_id, c.prompt_tokens, c.completion_tokens, c.total_cost, c.currency,
    c.unpriced, q.cost_quota,
    CASE
      WHEN q.cost_quota IS NULL THEN 'no quota'
      WHEN c.total_cost > q.cost_quota THEN 'over'
      ELSE 'within'
    END
  FROM costs c
  LEFT JOIN subscription_quota q ON q.subscription_id = c.subscription_id
$$;

-- R5: cost by subscription against its quota, this month (UTC) of ledger_now().
CREATE VIEW cost_by_subscription AS
SELECT * FROM cost_by_subscription_between(
  date_trunc('month', ledger_now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
  (date_trunc('month', ledger_now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
);
