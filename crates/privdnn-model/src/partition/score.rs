//! The selection score of spec §3.2: point(A_s, A_r) = σ((A_s − A_r)/5) − σ((A_base − A_s)/1),
//! accuracies in percent. The first term rewards a large gap between the authorised and the
//! unauthorised model; the second punishes any drop of A_s below the original accuracy.

/// Logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The reference's point; higher is better, range (−1, 1).
pub fn point(accuracy_separate: f64, accuracy_removed: f64, accuracy_base: f64) -> f64 {
    sigmoid((accuracy_separate - accuracy_removed) / 5.0)
        - sigmoid(accuracy_base - accuracy_separate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_matches_hand_computed_values() {
        // A_s = A_base and no gap: 0.5 − 0.5
        assert!((point(90.0, 90.0, 90.0)).abs() < 1e-12);
        // reference best MNIST (2,6): A_s 99.26, A_r 77.32, A_base 99.36
        let p = point(99.26, 77.32, 99.36);
        let expected = 1.0 / (1.0 + (-21.94f64 / 5.0).exp()) - 1.0 / (1.0 + (-0.1f64).exp());
        assert!((p - expected).abs() < 1e-12);
        assert!((p - 0.462_73).abs() < 1e-4, "{p}");
        // a 1-point drop costs σ(1) = 0.731
        assert!((point(89.0, 89.0, 90.0) - (0.5 - 0.731_058_578_6)).abs() < 1e-9);
        // monotone: bigger gap is better, lower A_s is worse
        assert!(point(90.0, 10.0, 90.0) > point(90.0, 50.0, 90.0));
        assert!(point(89.0, 10.0, 90.0) < point(90.0, 10.0, 90.0));
    }
}
