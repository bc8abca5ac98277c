//! `render` as an SVG chart, written by hand (no plotting or font library):
//! the first column is the x axis, every other numeric column a series
//! (Kusto's default for `timechart`, `linechart`, `areachart`,
//! `columnchart`, `barchart`, `scatterchart`); `piechart` takes the first
//! text column as labels and the first numeric one as values.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit};

use crate::error::KqlError;
use crate::value::format_datetime;

const W: f64 = 800.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

fn err(message: impl Into<String>) -> KqlError {
    KqlError::Chart(message.into())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn numbers(a: &ArrayRef) -> Option<Vec<Option<f64>>> {
    let t = a.data_type();
    let a = match t {
        DataType::Timestamp(..) => cast(
            &cast(a, &DataType::Timestamp(TimeUnit::Nanosecond, None)).ok()?,
            &DataType::Int64,
        )
        .ok()?,
        DataType::Duration(..) => cast(a, &DataType::Int64).ok()?,
        _ if t.is_numeric() => Arc::clone(a),
        _ => return None,
    };
    let f = cast(&a, &DataType::Float64).ok()?;
    Some(f.as_primitive::<Float64Type>().iter().collect())
}

fn texts(a: &ArrayRef) -> Vec<String> {
    let Ok(s) = cast(a, &DataType::Utf8) else {
        return vec![String::new(); a.len()];
    };
    s.as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect()
}

fn label(v: f64) -> String {
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else if v == v.trunc() {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The SVG of `batches` drawn as `kind`.
pub fn svg(kind: &str, batches: &[RecordBatch]) -> Result<String, KqlError> {
    let Some(first) = batches.first() else {
        return Err(err("nothing to chart: the query returned no rows"));
    };
    let schema = first.schema();
    let columns: Vec<ArrayRef> = (0..schema.fields().len())
        .map(|i| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            concat(&parts).map_err(|e| err(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if names.is_empty() {
        return Err(err("nothing to chart: the query returned no columns"));
    }
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    if kind == "piechart" {
        pie(&mut out, &names, &columns)?;
    } else {
        xy(&mut out, kind, &names, &columns)?;
    }
    out.push_str("</svg>\n");
    Ok(out)
}

fn xy(
    out: &mut String,
    kind: &str,
    names: &[String],
    columns: &[ArrayRef],
) -> Result<(), KqlError> {
    let x_col = &columns[0];
    let is_time = matches!(x_col.data_type(), DataType::Timestamp(..));
    let x_num = numbers(x_col);
    let x_text = texts(x_col);
    let n = x_col.len();
    let series: Vec<(String, Vec<Option<f64>>)> = names
        .iter()
        .zip(columns)
        .skip(1)
        .filter_map(|(name, c)| numbers(c).map(|v| (name.clone(), v)))
        .collect();
    if series.is_empty() {
        return Err(err("nothing to chart: no numeric column after the first"));
    }
    // x positions: by value for numbers and times, by position otherwise.
    let bars = matches!(kind, "columnchart" | "barchart");
    let xs: Vec<f64> = match (&x_num, bars) {
        (Some(v), false) => v.iter().map(|x| x.unwrap_or(0.0)).collect(),
        _ => (0..n).map(|i| i as f64).collect(),
    };
    let (mut xmin, mut xmax) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if bars {
        xmin -= 0.5;
        xmax += 0.5;
    }
    if xmin == xmax {
        xmax = xmin + 1.0;
    }
    let all: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .collect();
    let ymin = all.iter().copied().fold(0.0f64, f64::min);
    let mut ymax = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !ymax.is_finite() || ymax <= ymin {
        ymax = ymin + 1.0;
    }
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |x: f64| LEFT + (x - xmin) / (xmax - xmin) * pw;
    let py = |y: f64| TOP + ph - (y - ymin) / (ymax - ymin) * ph;
    let _ = write!(
        out,
        r#"<text x="{}" y="24" font-size="14">{}</text>"#,
        LEFT,
        escape(kind)
    );
    // Axes with their ticks.
    let _ = write!(
        out,
        r#"<g class="axes" stroke="black"><line class="x-axis" x1="{LEFT}" y1="{y0}" x2="{x1}" y2="{y0}"/><line class="y-axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{y0}"/></g>"#,
        y0 = TOP + ph,
        x1 = LEFT + pw
    );
    for k in 0..=4 {
        let v = ymin + (ymax - ymin) * k as f64 / 4.0;
        let _ = write!(
            out,
            r#"<text class="y-tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            py(v) + 4.0,
            label(v)
        );
    }
    let x_label = |i: usize| -> String {
        match (&x_num, is_time) {
            (Some(v), true) => v[i].map(|m| format_datetime(m as i64)).unwrap_or_default(),
            (Some(v), false) => v[i].map(label).unwrap_or_default(),
            _ => x_text[i].clone(),
        }
    };
    let ticks: Vec<usize> = if n <= 6 {
        (0..n).collect()
    } else {
        (0..5).map(|k| k * (n - 1) / 4).collect()
    };
    for i in ticks {
        let _ = write!(
            out,
            r#"<text class="x-tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(xs[i]),
            TOP + ph + 18.0,
            escape(&x_label(i))
        );
    }
    let _ = write!(
        out,
        r#"<text class="x-title" x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 10.0,
        escape(&names[0])
    );
    // Series, sorted by x for lines.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| xs[*a].total_cmp(&xs[*b]));
    let slot = pw / (xmax - xmin);
    for (s, (name, values)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let _ = write!(out, r#"<g class="series" data-name="{}">"#, escape(name));
        if bars {
            let bw = slot * 0.8 / series.len() as f64;
            for i in 0..n {
                let Some(v) = values[i] else { continue };
                let x = px(xs[i]) - slot * 0.4 + bw * s as f64;
                let (y1, y2) = (py(v.max(0.0)), py(v.min(0.0)));
                let _ = write!(
                    out,
                    r#"<rect x="{x:.1}" y="{y1:.1}" width="{bw:.1}" height="{:.1}" fill="{color}"/>"#,
                    (y2 - y1).max(0.5)
                );
            }
        } else {
            let points: Vec<String> = order
                .iter()
                .filter_map(|&i| values[i].map(|v| format!("{:.1},{:.1}", px(xs[i]), py(v))))
                .collect();
            if kind == "scatterchart" {
                for p in &points {
                    if let Some((x, y)) = p.split_once(',') {
                        let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
                    }
                }
            } else {
                let _ = write!(
                    out,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                    points.join(" ")
                );
            }
        }
        out.push_str("</g>");
        let ly = TOP + 16.0 * s as f64;
        let _ = write!(
            out,
            r#"<g class="legend"><rect x="{}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{}" y="{:.1}">{}</text></g>"#,
            W - RIGHT + 12.0,
            ly,
            W - RIGHT + 28.0,
            ly + 9.0,
            escape(name)
        );
    }
    Ok(())
}

fn pie(out: &mut String, names: &[String], columns: &[ArrayRef]) -> Result<(), KqlError> {
    let label_col = columns
        .iter()
        .position(|c| {
            matches!(
                c.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        })
        .unwrap_or(0);
    let Some((value_col, values)) = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != label_col)
        .find_map(|(i, c)| numbers(c).map(|v| (i, v)))
    else {
        return Err(err("nothing to chart: a piechart needs a numeric column"));
    };
    let labels = texts(&columns[label_col]);
    let total: f64 = values.iter().flatten().filter(|v| **v > 0.0).sum();
    if total <= 0.0 {
        return Err(err("nothing to chart: the pie values sum to zero"));
    }
    let (cx, cy, r) = (LEFT + 150.0, TOP + 170.0, 150.0);
    let mut angle = -std::f64::consts::FRAC_PI_2;
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="14">piechart: {}</text>"#,
        escape(&names[value_col])
    );
    for (k, (l, v)) in labels.iter().zip(&values).enumerate() {
        let Some(v) = v.filter(|v| *v > 0.0) else {
            continue;
        };
        let sweep = v / total * std::f64::consts::TAU;
        let (x1, y1) = (cx + r * angle.cos(), cy + r * angle.sin());
        angle += sweep;
        let (x2, y2) = (cx + r * angle.cos(), cy + r * angle.sin());
        let large = if sweep > std::f64::consts::PI { 1 } else { 0 };
        let color = COLORS[k % COLORS.len()];
        let _ = write!(
            out,
            r#"<g class="series" data-name="{}"><path d="M{cx:.1},{cy:.1} L{x1:.1},{y1:.1} A{r},{r} 0 {large} 1 {x2:.1},{y2:.1} Z" fill="{color}"/></g>"#,
            escape(l)
        );
        let ly = TOP + 16.0 * k as f64;
        let _ = write!(
            out,
            r#"<g class="legend"><rect x="{}" y="{ly:.1}" width="10" height="10" fill="{color}"/><text x="{}" y="{:.1}">{} ({})</text></g>"#,
            W - RIGHT - 40.0,
            W - RIGHT - 24.0,
            ly + 9.0,
            escape(l),
            label(v)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    #[test]
    fn a_column_chart_has_axes_a_series_per_numeric_column_and_a_legend() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("calls", DataType::Int64, false),
            Field::new("tokens", DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![3, 5])),
                Arc::new(Int64Array::from(vec![30, 50])),
            ],
        )
        .unwrap();
        let s = svg("columnchart", &[b]).unwrap();
        assert!(s.contains(r#"class="x-axis""#) && s.contains(r#"class="y-axis""#));
        assert_eq!(s.matches(r#"class="series""#).count(), 2);
        assert_eq!(s.matches("<rect x=").count(), 4 + 2);
        assert!(s.contains(">tokens</text>"));
    }
}
