//! `model_price(name, 'input'|'cached_input'|'output')`: the price per 1,000 tokens the
//! built-in price table gives a model or deployment name (its latest
//! entry), for the Log Analytics `PRICING_CL` compatibility table.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use ledger_core::cost::PriceTable;

/// Prices per 1,000 tokens: the table's per-1M decimals shifted by three places.
const SCALE_PER_1M: u32 = 16;
pub const PRICE_TYPE: DataType = DataType::Decimal128(38, 19);

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(ModelPrice {
        signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
        table: Arc::new(PriceTable::builtin()),
    })
}

#[derive(Debug)]
struct ModelPrice {
    signature: Signature,
    table: Arc<PriceTable>,
}

impl PartialEq for ModelPrice {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for ModelPrice {}
impl std::hash::Hash for ModelPrice {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "model_price".hash(state);
    }
}

impl ScalarUDFImpl for ModelPrice {
    fn name(&self) -> &str {
        "model_price"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(PRICE_TYPE)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n).and_then(|a| Ok(cast(&a, &DataType::Utf8)?)))
            .collect::<Result<_>>()?;
        let (names, which) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
        let mut out = Decimal128Builder::with_capacity(n);
        for i in 0..n {
            if names.is_null(i) || which.is_null(i) {
                out.append_null();
                continue;
            }
            let price = self
                .table
                .price(names.value(i), None)
                .map(|p| match which.value(i) {
                    "output" => p.output,
                    "cached_input" => p.cached_input.unwrap_or(p.input),
                    _ => p.input,
                });
            out.append_option(price.map(|mut d| {
                d.rescale(SCALE_PER_1M);
                d.mantissa()
            }));
        }
        Ok(ColumnarValue::Array(Arc::new(
            out.finish().with_data_type(PRICE_TYPE),
        )))
    }
}
