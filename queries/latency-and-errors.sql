-- Latency percentiles (p50/p95/p99, milliseconds) by deployment, and the
-- share of throttled (429) and server-error (5xx) calls.
SELECT
  COALESCE(deployment, model) AS deployment,
  COUNT(*) AS calls,
  approx_percentile_cont(duration_ms, 0.5) AS p50_ms,
  approx_percentile_cont(duration_ms, 0.95) AS p95_ms,
  approx_percentile_cont(duration_ms, 0.99) AS p99_ms,
  AVG(CASE WHEN status_code = 429 THEN 1.0 ELSE 0.0 END) AS rate_429,
  AVG(CASE WHEN status_code >= 500 THEN 1.0 ELSE 0.0 END) AS rate_5xx
FROM calls
GROUP BY COALESCE(deployment, model)
ORDER BY calls DESC, deployment
