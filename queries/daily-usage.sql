-- Daily tokens and cost by model, deployment, subscription and product.
SELECT
  CAST(date_trunc('day', request_time) AS DATE) AS day,
  model,
  deployment,
  subscription_id,
  product_id,
  COUNT(*) AS calls,
  SUM(prompt_tokens) AS prompt_tokens,
  SUM(completion_tokens) AS completion_tokens,
  SUM(total_tokens) AS total_tokens,
  SUM(cost) AS cost,
  MAX(currency) AS currency
FROM calls
GROUP BY 1, model, deployment, subscription_id, product_id
ORDER BY day NULLS LAST, total_tokens DESC NULLS LAST,
  model NULLS LAST, deployment NULLS LAST, subscription_id NULLS LAST, product_id NULLS LAST
