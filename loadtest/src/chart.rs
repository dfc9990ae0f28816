//! SVG charts for docs/benchmarks.md, drawn with plotters' SVG backend (no font files
//! or native libraries needed): relayed packets/s and loss against offered load, and
//! server RSS against live allocations.

use plotters::prelude::*;

/// One server's points in the load sweep: `(offered pps, relayed pps, loss %)`.
pub struct SweepSeries {
    /// Legend name.
    pub name: String,
    /// Points, in order of offered load.
    pub points: Vec<(f64, f64, f64)>,
}

/// One server's RSS curve: `(live allocations, RSS MiB)`.
pub struct RssSeries {
    /// Legend name.
    pub name: String,
    /// Samples in time order.
    pub points: Vec<(f64, f64)>,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

fn err(e: impl std::fmt::Display) -> String {
    format!("chart: {e}")
}

fn nice_max(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v * 1.1
    } else {
        1.0
    }
}

/// Relayed packets/s (solid lines, left axis) and loss % (circles, right axis) against
/// offered packets/s, every series on one chart.
pub fn sweep_chart(path: &str, title: &str, series: &[SweepSeries]) -> Result<(), String> {
    let xmax = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(0.0, f64::max),
    );
    let ymax = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let lmax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.2))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?
        .set_secondary_coord(0f64..xmax, 0f64..lmax);
    chart
        .configure_mesh()
        .x_desc("offered packets/s (sent by loadtest)")
        .y_desc("relayed packets/s (server)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc("loss % (circles)")
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        // Drawn in order of the load actually offered: on a busy machine a higher target
        // rate can come out lower, and unsorted points would draw loops.
        let mut points = s.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("{} relayed pps", s.name))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_secondary_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.2), 4, color.filled())),
            )
            .map_err(err)?
            .label(format!("{} loss %", s.name))
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Server RSS against live allocations, one line per server.
pub fn rss_chart(path: &str, title: &str, series: &[RssSeries]) -> Result<(), String> {
    let xmax = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(0.0, f64::max),
    );
    let ymax = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("live allocations")
        .y_desc("server RSS (MiB)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_every_series() {
        let dir = std::env::temp_dir().join(format!("loadtest-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sweep = dir.join("sweep.svg");
        let p = sweep.to_str().unwrap();
        sweep_chart(
            p,
            "sweep",
            &[
                SweepSeries {
                    name: "ours".into(),
                    points: vec![(1000.0, 2000.0, 0.0), (2000.0, 3900.0, 2.5)],
                },
                SweepSeries {
                    name: "coturn".into(),
                    points: vec![],
                },
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&sweep).unwrap();
        assert!(text.starts_with("<svg") && text.contains("ours relayed pps"));
        assert!(text.contains("coturn loss %"));
        let rss = dir.join("rss.svg");
        rss_chart(
            rss.to_str().unwrap(),
            "rss",
            &[RssSeries {
                name: "ours".into(),
                points: vec![(0.0, 4.0), (100.0, 5.0)],
            }],
        )
        .unwrap();
        assert!(
            std::fs::read_to_string(&rss)
                .unwrap()
                .contains("live allocations")
        );
    }
}
