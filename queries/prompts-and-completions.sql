-- R4: prompts and completions per call (built-in LLM logging KQL): request
-- message contents and response text, each joined with " . ".
SELECT
  COALESCE(correlation_id, request_id) AS "CorrelationId",
  json_array_join(prompt_text, 'content', ' . ') AS "Input",
  response_text AS "Output"
FROM calls
WHERE json_array_join(prompt_text, 'content', ' . ') <> ''
  AND response_text IS NOT NULL AND response_text <> ''
ORDER BY "CorrelationId", "Input", "Output"
