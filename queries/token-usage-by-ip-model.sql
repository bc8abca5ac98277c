-- R1: token usage by caller IP and model (seed KQL). Streamed calls and
-- calls whose bodies exceeded logging limits are counted: their usage comes
-- from the reassembled response (or an estimate; see usage_source).
SELECT
  caller_ip AS ip,
  model,
  SUM(prompt_tokens) AS sum_prompttokens,
  SUM(completion_tokens) AS sum_completiontokens,
  SUM(total_tokens) AS sum_totaltokens,
  AVG(total_tokens) AS avg_totaltokens
FROM calls
WHERE lower(operation_id) IN ('completions_create', 'chatcompletions_create')
  AND status_code = 200
  AND model IS NOT NULL AND model <> ''
GROUP BY caller_ip, model
ORDER BY ip NULLS LAST, model
