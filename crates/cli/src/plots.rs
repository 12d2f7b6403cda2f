//! SVG charts of a run: how training went, and per-task ROC curves.
//!
//! Drawn with plotters' SVG backend and no font files: text is written as
//! SVG text for the viewer to render, so the charts look the same on any
//! machine that made them.

use anyhow::anyhow;
use ferrochem_data::Matrix;
use ferrochem_train::EpochRecord;
use ferrochem_train::metrics::Metric;
use plotters::prelude::*;

/// Line colours, one per ensemble member (cycled).
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn plot_error(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the chart: {err}")
}

/// The smallest and largest value, widened a little so lines stay off the
/// frame (and into a range when every value is the same).
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad)..(hi + pad)
}

/// What a panel plots of an epoch.
type EpochValue<'a> = dyn Fn(&EpochRecord) -> Option<f64> + 'a;

/// Training loss (left) and the validation metric (right) per epoch, one
/// line per ensemble member.
pub fn training_curves(histories: &[&[EpochRecord]], metric: Metric) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (left, right) = root.split_horizontally(480);
        let last_epoch = histories.iter().map(|h| h.len()).max().unwrap_or(1).max(2) as f64;
        let panels: [(&DrawingArea<_, _>, String, &EpochValue<'_>); 2] = [
            (&left, "training loss".to_owned(), &|r| Some(r.train_loss)),
            (&right, format!("validation {}", metric.name()), &|r| {
                r.valid.as_ref().and_then(|v| v.mean(metric))
            }),
        ];
        for (area, title, value) in panels {
            let range = padded_range(histories.iter().flat_map(|h| h.iter().filter_map(value)));
            let mut chart = ChartBuilder::on(area)
                .caption(&title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(1f64..last_epoch, range)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_label_formatter(&|v| format!("{v:.3}"))
                .draw()
                .map_err(plot_error)?;
            for (member, history) in histories.iter().enumerate() {
                let colour = COLOURS[member % COLOURS.len()];
                let points: Vec<(f64, f64)> = history
                    .iter()
                    .filter_map(|r| value(r).map(|v| ((r.epoch + 1) as f64, v)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                    .map_err(plot_error)?;
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The ROC curve of scores against labels: points from (0, 0) to (1, 1),
/// one per distinct score, tied scores moving diagonally.
fn roc_points(scores: &[f64], positive: &[bool]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (idx, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0
        } else {
            fp += 1.0
        }
        let tie_follows = order.get(idx + 1).is_some_and(|&next| scores[next] == scores[i]);
        if !tie_follows {
            points.push((fp / n_neg, tp / n_pos));
        }
    }
    points
}

/// A grid of per-task ROC curves, four to a row, each titled with the
/// task's ROC-AUC; tasks without both classes are drawn empty.
pub fn roc_curves(
    tasks: &[String],
    predictions: &Matrix<f32>,
    targets: &Matrix<f32>,
    mask: &Matrix<f32>,
) -> anyhow::Result<String> {
    const COLUMNS: usize = 4;
    const CELL: u32 = 260;
    let rows = tasks.len().div_ceil(COLUMNS).max(1);
    let mut svg = String::new();
    {
        let size = (CELL * COLUMNS as u32, CELL * rows as u32);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let cells = root.split_evenly((rows, COLUMNS));
        for (t, (task, area)) in tasks.iter().zip(&cells).enumerate() {
            let (mut scores, mut positive) = (Vec::new(), Vec::new());
            for r in 0..predictions.nrows() {
                if mask[(r, t)] > 0.0 {
                    scores.push(f64::from(predictions[(r, t)]));
                    positive.push(targets[(r, t)] > 0.5);
                }
            }
            let auc = ferrochem_train::metrics::roc_auc(&scores, &positive);
            let title = match auc {
                Some(auc) => format!("{task} (AUC {auc:.3})"),
                None => format!("{task} (one class only)"),
            };
            let mut chart = ChartBuilder::on(area)
                .caption(&title, ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(34)
                .build_cartesian_2d(0f64..1f64, 0f64..1f64)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_labels(3)
                .y_labels(3)
                .x_desc("false positive rate")
                .y_desc("true positive rate")
                .label_style(("sans-serif", 10))
                .draw()
                .map_err(plot_error)?;
            chart
                .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], RGBColor(180, 180, 180)))
                .map_err(plot_error)?;
            if auc.is_some() {
                chart
                    .draw_series(LineSeries::new(
                        roc_points(&scores, &positive),
                        COLOURS[0].stroke_width(2),
                    ))
                    .map_err(plot_error)?;
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_points_step_through_ties_diagonally() {
        let points = roc_points(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]);
        assert_eq!(points, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
    }
}
