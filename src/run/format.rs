//! How numbers and durations read, the same in every front end.

use crate::protocol::QualityReport;

/// A loss or probability in a fixed, short form; not-a-number says so.
pub fn format_value(v: f32) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Seconds as `1h02m03s`, `2m03s` or `3.4s`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "--".to_string();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else {
        format!("{m}m{s:02}s")
    }
}

/// A learning rate in at most three significant digits, short as it goes: `2e-4`, `1.73e-4`.
pub fn format_learning_rate(lr: f64) -> String {
    if !lr.is_finite() {
        return format!("{lr}");
    }
    let text = format!("{lr:.2e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

/// A KID in about three significant figures: `12.3`, `0.0421`, `-0.0003`.
pub fn format_kid(kid: f64) -> String {
    let a = kid.abs();
    if !kid.is_finite() || a >= 100.0 {
        format!("{kid:.0}")
    } else if a >= 10.0 {
        format!("{kid:.1}")
    } else if a >= 1.0 {
        format!("{kid:.2}")
    } else {
        format!("{kid:.4}")
    }
}

/// The report as one line: `score 8.91 | fcd 12.3 (floor 8.3) | recognised 93% | ...`.
pub fn quality_line(q: &QualityReport) -> String {
    let mut line = format!(
        "score {:.2} | fcd {:.1} (floor {:.1}) | recognised {:.0}%",
        q.score,
        q.fcd,
        q.fcd_floor,
        q.recognised * 100.0
    );
    if let Some(a) = q.agreement {
        line.push_str(&format!(" | asked-for digit {:.0}%", a * 100.0));
    }
    line.push_str(&format!(
        " | kid {}±{} (floor {}) | precision {:.0}% (real {:.0}%) | recall {:.0}% (real {:.0}%)",
        format_kid(q.kid),
        format_kid(q.kid_std),
        format_kid(q.kid_floor),
        q.precision * 100.0,
        q.precision_ceiling * 100.0,
        q.recall * 100.0,
        q.recall_ceiling * 100.0
    ));
    line
}

/// The class shares as text: `0:10% 1:11% ...`.
pub fn shares_line(q: &QualityReport) -> String {
    q.class_shares
        .iter()
        .enumerate()
        .map(|(d, s)| format!("{d}:{:.0}%", s * 100.0))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_durations_format_compactly() {
        assert_eq!(format_value(0.54321), "0.543");
        assert_eq!(format_value(123.56), "123.6");
        assert_eq!(format_value(f32::NAN), "NaN");
        assert_eq!(format_value(f32::INFINITY), "inf");
        assert_eq!(format_duration(3.44), "3.4s");
        assert_eq!(format_duration(123.0), "2m03s");
        assert_eq!(format_duration(3723.0), "1h02m03s");
        assert_eq!(format_duration(f64::NAN), "--");
    }

    #[test]
    fn learning_rates_keep_three_digits() {
        assert_eq!(format_learning_rate(2e-4), "2e-4");
        assert_eq!(format_learning_rate(1.5e-5), "1.5e-5");
        assert_eq!(format_learning_rate(1.7320508e-4), "1.73e-4");
        assert_eq!(format_learning_rate(1.0), "1e0");
    }
}
