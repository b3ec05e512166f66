//! The PNG chart of pod start latency distributions: one empirical CDF line per series.

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

/// The font the chart's text is drawn with (Debian's fonts-dejavu-core, which scripts/bench
/// installs): plotters draws no text without a registered font.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Draws each `(name, samples)` series as a CDF (x: milliseconds, log scale; y: fraction of
/// pods started) into `out`.
pub fn cdf(out: &Path, title: &str, series: &[(&str, &[Duration])]) -> Result<(), String> {
    let font = std::fs::read(FONT).map_err(|e| format!("{FONT}: {e}"))?;
    // register_font keeps the bytes for the life of the process.
    plotters::style::register_font("sans-serif", FontStyle::Normal, font.leak())
        .map_err(|_| format!("{FONT}: not a usable font"))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let all = series.iter().flat_map(|(_, s)| s.iter().map(ms));
    let (lo, hi) = all.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return Err("no samples".into());
    }
    let root = BitMapBackend::new(out, (1100, 650)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| format!("{}: {e:?}", out.display());
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(((lo * 0.8).max(0.1)..hi * 1.2).log_scale(), 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("milliseconds to Running/Ready (log scale)")
        .y_desc("fraction of pods")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    for (i, (name, samples)) in series.iter().enumerate() {
        let mut v: Vec<f64> = samples.iter().map(ms).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let color = Palette99::pick(i).to_rgba();
        let points = v
            .iter()
            .enumerate()
            .flat_map(|(k, x)| [(*x, k as f64 / n), (*x, (k + 1) as f64 / n)]);
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
