//! A small line/scatter chart renderer on plotters, drawn twice: SVG (`SVGBackend`) and PNG (an
//! RGB buffer from `BitMapBackend::with_buffer`, encoded with the `png` crate). Text uses the
//! DejaVu Sans font embedded by the `dejavu` crate through plotters' `ab_glyph` feature, so no
//! system font (fontconfig, font-kit) is needed on a headless machine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::AnalyzeError;

/// Size of every figure in pixels (PNG) / user units (SVG).
pub const SIZE: (u32, u32) = (960, 600);

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Solid line with point markers.
    Line,
    /// Dashed line (reference curves).
    Dashed,
    /// Small dots, no line (many points).
    Dots,
}

/// One series.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Colour index into [`PALETTE`].
    pub color: usize,
    /// Drawing style.
    pub style: Style,
}

impl Series {
    /// A series.
    pub fn new(
        label: impl Into<String>,
        points: Vec<(f64, f64)>,
        color: usize,
        style: Style,
    ) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            style,
        }
    }
}

/// A chart.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Series in drawing order.
    pub series: Vec<Series>,
    /// Fixed y range (otherwise from the data).
    pub y_range: Option<(f64, f64)>,
    /// Corner of the legend.
    pub legend: Legend,
}

/// Corner of the legend box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Legend {
    /// Upper left.
    UpperLeft,
    /// Upper right.
    #[default]
    UpperRight,
    /// Lower left.
    LowerLeft,
    /// Lower right.
    LowerRight,
}

impl Legend {
    fn position(self) -> SeriesLabelPosition {
        match self {
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }
}

/// Tick label with as many decimals as the axis span needs.
fn tick(span: f64) -> impl Fn(&f64) -> String {
    let digits = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else {
        2
    };
    move |v: &f64| format!("{v:.digits$}")
}

/// Colours (colour-blind friendly, Okabe–Ito).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(120, 120, 120),
];

/// Registers the embedded font once.
fn font() -> Result<(), AnalyzeError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if ok { Ok(()) } else { Err(AnalyzeError::Font) }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < 1e-12 {
        return (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    area.fill(&WHITE).map_err(e)?;
    let (x0, x1) = range(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0)),
    );
    let (y0, y1) = chart.y_range.unwrap_or_else(|| {
        range(
            chart
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1)),
        )
    });
    let mut c = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    let (x_tick, y_tick) = (tick(x1 - x0), tick(y1 - y0));
    c.configure_mesh()
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    for s in &chart.series {
        let color = PALETTE[s.color % PALETTE.len()];
        let legend = s.label.clone();
        match s.style {
            Style::Line => {
                c.draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(legend)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
                c.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(e)?;
            }
            Style::Dashed => {
                c.draw_series(DashedLineSeries::new(
                    s.points.iter().copied(),
                    6,
                    4,
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(legend)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
                });
            }
            Style::Dots => {
                c.draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, 2, color.mix(0.6).filled())),
                )
                .map_err(e)?
                .label(legend)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
            }
        }
    }
    if chart.series.iter().any(|s| !s.label.is_empty()) {
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(chart.legend.position())
            .draw()
            .map_err(e)?;
    }
    area.present().map_err(e)?;
    Ok(())
}

/// Renders `chart` to `<stem>.svg` and `<stem>.png`.
pub fn render(chart: &Chart, stem: &Path) -> Result<[PathBuf; 2], AnalyzeError> {
    font()?;
    let svg = stem.with_extension("svg");
    let png_path = stem.with_extension("png");
    {
        let area = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw(&area, chart).map_err(|message| AnalyzeError::Plot {
            path: svg.clone(),
            message,
        })?;
    }
    let (w, h) = SIZE;
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
        draw(&area, chart).map_err(|message| AnalyzeError::Plot {
            path: png_path.clone(),
            message,
        })?;
    }
    write_png(&png_path, w, h, &buffer)?;
    Ok([svg, png_path])
}

fn write_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<(), AnalyzeError> {
    let file = std::fs::File::create(path).map_err(|e| AnalyzeError::io(path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let png_err = |source| AnalyzeError::Png {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(rgb).map_err(png_err)?;
    writer.finish().map_err(png_err)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Width and height from a PNG's IHDR chunk.
    pub(crate) fn png_size(path: &Path) -> (u32, u32) {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("open png"),
        ));
        let reader = decoder.read_info().expect("png header");
        let info = reader.info();
        (info.width, info.height)
    }

    #[test]
    fn renders_png_and_svg_of_the_expected_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chart = Chart {
            title: "test chart".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series::new(
                    "line",
                    vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)],
                    0,
                    Style::Line,
                ),
                Series::new("dashed", vec![(0.0, 2.0), (2.0, 2.5)], 1, Style::Dashed),
                Series::new("dots", vec![(0.5, 1.5), (1.5, 2.5)], 2, Style::Dots),
            ],
            y_range: None,
            legend: Legend::LowerRight,
        };
        let [svg, png_path] = render(&chart, &dir.path().join("chart")).expect("render");
        assert_eq!(png_size(&png_path), SIZE);
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
        assert!(text.contains("test chart"));
        // the PNG is not blank: text and lines put dark pixels on the white background
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&png_path).expect("open"),
        ));
        let mut reader = decoder.read_info().expect("info");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut buf).expect("frame");
        assert!(buf.iter().filter(|&&b| b < 100).count() > 1000);
    }

    #[test]
    fn tick_labels_follow_the_span() {
        assert_eq!(tick(120_000.0)(&20_000.0), "20000");
        assert_eq!(tick(10.0)(&2.5), "2.5");
        assert_eq!(tick(1.0)(&0.125), "0.12");
    }

    #[test]
    fn ranges_pad_and_survive_degenerate_data() {
        assert_eq!(range([1.0, 1.0].into_iter()), (0.0, 2.0));
        assert_eq!(range(std::iter::empty()), (0.0, 1.0));
        let (lo, hi) = range([0.0, 10.0].into_iter());
        assert!(lo < 0.0 && hi > 10.0);
    }
}
