-- Log Analytics compatibility table PRICING_CL (the FinOps samples' price
-- list): one row per model and per deployment name the lake has seen, with
-- the prices per 1,000 tokens the built-in table (schemas/prices.json,
-- latest entry) gives it. Calls' own `cost` also honours cached tokens and
-- price history; this table is the flat list the KQL samples join with.
SELECT
  "Model",
  model_price("Model", 'input') AS "InputTokensPrice",
  model_price("Model", 'output') AS "OutputTokensPrice",
  -- Beyond the samples' columns: cached prompt tokens bill at this price.
  model_price("Model", 'cached_input') AS "CachedInputTokensPrice"
FROM (
  SELECT DISTINCT model AS "Model" FROM calls WHERE model IS NOT NULL
  UNION
  SELECT DISTINCT deployment AS "Model" FROM calls WHERE deployment IS NOT NULL
)
WHERE model_price("Model", 'input') IS NOT NULL
