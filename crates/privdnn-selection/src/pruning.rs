//! Pruning criteria used as selection rules (spec §3.6): filters ranked per layer by the L2 norm
//! of their weights, by FPGM (summed Euclidean distance to all other filters of the layer: far
//! from the geometric median = hard to replace), or by HRank (average rank of the filter's
//! output feature maps over sample images). Each ranking lists filter indices best first;
//! the top n are the selection and the top 2n the pool of pruning + greedy (§3.7).

use privdnn_artifacts::{DatasetSplit, NamedTensor, TrainedModel};
use privdnn_model::batch_tensor;
use privdnn_model::burn::tensor::Device;

use crate::error::SelectError;
use privdnn_model::partition::network;

fn filters(weight: &NamedTensor) -> Vec<&[f32]> {
    let per = weight.values.len() / weight.shape[0].max(1);
    weight.values.chunks(per).collect()
}

fn rank_by(scores: Vec<f64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

fn weight(model: &TrainedModel, layer: usize) -> Result<&NamedTensor, SelectError> {
    let name = format!("conv{layer}.weight");
    model
        .tensor(&name)
        .ok_or_else(|| SelectError::InvalidSelection(format!("model has no `{name}`")))
}

/// Filters of conv`layer` by decreasing L2 norm.
pub fn l2_ranking(model: &TrainedModel, layer: usize) -> Result<Vec<usize>, SelectError> {
    let w = weight(model, layer)?;
    Ok(rank_by(
        filters(w)
            .iter()
            .map(|f| f.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt())
            .collect(),
    ))
}

/// Filters of conv`layer` by decreasing summed distance to the other filters (FPGM).
pub fn fpgm_ranking(model: &TrainedModel, layer: usize) -> Result<Vec<usize>, SelectError> {
    let fs = filters(weight(model, layer)?);
    let distance = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    Ok(rank_by(
        fs.iter()
            .map(|a| fs.iter().map(|b| distance(a, b)).sum())
            .collect(),
    ))
}

/// Numerical rank of a row-major `rows × cols` matrix (Gaussian elimination with partial
/// pivoting; pivots below `max|a| · max(rows, cols) · ε_f32` count as zero).
pub fn matrix_rank(values: &[f32], rows: usize, cols: usize) -> usize {
    let mut a: Vec<f64> = values.iter().map(|v| f64::from(*v)).collect();
    let max = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max == 0.0 {
        return 0;
    }
    let tol = max * rows.max(cols) as f64 * f64::from(f32::EPSILON);
    let mut rank = 0;
    for col in 0..cols {
        if rank == rows {
            break;
        }
        let pivot = (rank..rows)
            .max_by(|&i, &j| a[i * cols + col].abs().total_cmp(&a[j * cols + col].abs()))
            .unwrap_or(rank);
        if a[pivot * cols + col].abs() <= tol {
            continue;
        }
        for k in 0..cols {
            a.swap(rank * cols + k, pivot * cols + k);
        }
        for i in rank + 1..rows {
            let f = a[i * cols + col] / a[rank * cols + col];
            if f != 0.0 {
                for k in col..cols {
                    a[i * cols + k] -= f * a[rank * cols + k];
                }
            }
        }
        rank += 1;
    }
    rank
}

/// Filters of conv1 and conv2 by decreasing average feature-map rank over `images` images of
/// `split` (the raw conv outputs, as the reference's hook on the conv layer).
pub fn hrank_rankings(
    model: &TrainedModel,
    split: &DatasetSplit,
    images: usize,
    device: &Device,
) -> Result<[Vec<usize>; 2], SelectError> {
    let net = network(model, device)?;
    let chosen = privdnn_data::sample_indices(split.len(), images.max(1), 1);
    let mut sums: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for chunk in chosen.chunks(100) {
        let (values, _) = privdnn_data::make_batch(split, chunk, &model.normalization, None);
        let z1 = net.conv1(batch_tensor(values, chunk.len(), split, device));
        let z2 = net.conv2(net.layer1(z1.clone()));
        for (layer, z) in [z1, z2].into_iter().enumerate() {
            let [n, c, h, w] = z.dims();
            let data = privdnn_model::tensor_values(z, "activations")?;
            sums[layer].resize(c, 0.0);
            for img in 0..n {
                for (ch, sum) in sums[layer].iter_mut().enumerate() {
                    let start = (img * c + ch) * h * w;
                    *sum += matrix_rank(&data[start..start + h * w], h, w) as f64;
                }
            }
        }
    }
    Ok(sums.map(rank_by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_rank_of_known_matrices() {
        assert_eq!(matrix_rank(&[1.0, 0.0, 0.0, 1.0], 2, 2), 2);
        assert_eq!(matrix_rank(&[1.0, 2.0, 2.0, 4.0], 2, 2), 1);
        assert_eq!(matrix_rank(&[0.0; 9], 3, 3), 0);
        let rank2 = [1.0, 2.0, 3.0, 2.0, 4.0, 6.5, 3.0, 6.0, 9.5];
        assert_eq!(matrix_rank(&rank2, 3, 3), 2);
    }

    #[test]
    fn rankings_of_hand_made_filters() {
        let model = TrainedModel {
            dataset: "t".into(),
            spec: privdnn_artifacts::ModelSpec {
                architecture: privdnn_artifacts::Architecture::Lenet5,
                in_channels: 1,
                image_size: 28,
                num_classes: 10,
                lenet_filters: [3, 3],
                width: 1.0,
            },
            normalization: privdnn_artifacts::Normalization {
                mean: vec![0.0],
                std: vec![1.0],
            },
            tensors: vec![NamedTensor {
                name: "conv1.weight".into(),
                shape: vec![3, 1, 1, 2],
                // norms 1, 5, 2; filter 1 is far from the others
                values: vec![1.0, 0.0, 3.0, 4.0, 0.0, 2.0],
            }],
        };
        assert_eq!(l2_ranking(&model, 1).expect("l2"), vec![1, 2, 0]);
        assert_eq!(fpgm_ranking(&model, 1).expect("fpgm")[0], 1);
        assert!(l2_ranking(&model, 2).is_err());
    }
}
