-- Top callers (IP, subscription, app id, end user) by tokens and by cost.
SELECT
  caller_ip,
  subscription_id,
  app_id,
  end_user,
  COUNT(*) AS calls,
  SUM(total_tokens) AS total_tokens,
  SUM(cost) AS cost,
  RANK() OVER (ORDER BY SUM(total_tokens) DESC NULLS LAST) AS rank_by_tokens,
  RANK() OVER (ORDER BY SUM(cost) DESC NULLS LAST) AS rank_by_cost
FROM calls
GROUP BY caller_ip, subscription_id, app_id, end_user
ORDER BY rank_by_tokens, rank_by_cost,
  caller_ip NULLS LAST, subscription_id NULLS LAST, app_id NULLS LAST, end_user NULLS LAST
LIMIT 100
