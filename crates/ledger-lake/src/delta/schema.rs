//! Delta schema strings ↔ Arrow schemas, for the primitive types the lake
//! stores (see `crate::schema::arrow_type`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::{Value, json};

use super::DeltaError;

/// The Delta type name of an Arrow type.
fn delta_type(ty: &DataType) -> Result<String, DeltaError> {
    Ok(match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "long".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "timestamp".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        other => return Err(DeltaError::Schema(format!("no Delta type for {other}"))),
    })
}

fn arrow_of(name: &str) -> Result<DataType, DeltaError> {
    Ok(match name {
        "string" => DataType::Utf8,
        "integer" => DataType::Int32,
        "long" => DataType::Int64,
        "double" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "binary" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        other => {
            let dec = other
                .strip_prefix("decimal(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.split_once(','))
                .and_then(|(p, s)| Some((p.trim().parse().ok()?, s.trim().parse().ok()?)));
            match dec {
                Some((p, s)) => DataType::Decimal128(p, s),
                None => {
                    return Err(DeltaError::Schema(format!(
                        "unsupported Delta type `{other}`"
                    )));
                }
            }
        }
    })
}

/// The `schemaString` of a table with these columns.
pub fn schema_string(schema: &Schema) -> Result<String, DeltaError> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            Ok(json!({
                "name": f.name(),
                "type": delta_type(f.data_type())?,
                "nullable": f.is_nullable(),
                "metadata": {},
            }))
        })
        .collect::<Result<Vec<_>, DeltaError>>()?;
    Ok(json!({"type": "struct", "fields": fields}).to_string())
}

/// The Arrow schema of a `schemaString`.
pub fn parse_schema_string(s: &str) -> Result<SchemaRef, DeltaError> {
    let v: Value = serde_json::from_str(s).map_err(|e| DeltaError::Schema(e.to_string()))?;
    let fields = v
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| DeltaError::Schema("schemaString has no fields".into()))?;
    let fields = fields
        .iter()
        .map(|f| {
            let name = f.get("name").and_then(Value::as_str);
            let ty = f.get("type").and_then(Value::as_str);
            let (Some(name), Some(ty)) = (name, ty) else {
                return Err(DeltaError::Schema(format!("unsupported field {f}")));
            };
            let nullable = f.get("nullable").and_then(Value::as_bool).unwrap_or(true);
            Ok(Field::new(name, arrow_of(ty)?, nullable))
        })
        .collect::<Result<Vec<_>, DeltaError>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_strings_round_trip() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8, false),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("c", DataType::Decimal128(28, 10), true),
            Field::new("date", DataType::Date32, true),
        ]);
        let s = schema_string(&schema).unwrap();
        assert!(s.contains(r#""type":"decimal(28,10)""#), "{s}");
        assert_eq!(*parse_schema_string(&s).unwrap(), schema);
    }
}
