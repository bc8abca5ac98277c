-- R4: prompts and completions per call (built-in LLM logging KQL), with the
-- KQL's semantics: `mv-expand RequestArray | mv-expand ResponseArray` pairs
-- every request message with every response message, and each side's
-- contents over those pairs are joined with " . " (a request message is
-- repeated once per response message, and the other way round); a call
-- keeps a row when both sides hold some text.
SELECT "CorrelationId", "Input", "Output"
FROM (
  SELECT
    "CorrelationId",
    json_product_join("RequestMessages", "ResponseMessages", 'input', ' . ') AS "Input",
    json_product_join("RequestMessages", "ResponseMessages", 'output', ' . ') AS "Output"
  FROM "ApiManagementGatewayLlmLog"
)
WHERE "Input" <> '' AND "Output" <> ''
ORDER BY "CorrelationId", "Input", "Output"
