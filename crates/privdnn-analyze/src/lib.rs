//! Result analysis (placeholder while being written).
