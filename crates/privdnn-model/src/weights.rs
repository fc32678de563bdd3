//! Weights between burn modules and library-independent [`NamedTensor`]s.
//!
//! Names are dotted field paths without the architecture variant (`conv1.weight`,
//! `stages.0.bn_a.running_mean`). Import checks that every tensor of the network is given
//! exactly once with the right shape; parameter ids can be restored too, so an optimiser state
//! saved in a checkpoint still matches after a resume.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use privdnn_artifacts::NamedTensor;

use crate::convert::data_values;
use crate::error::ModelError;
use crate::network::Network;

/// Tracks the dotted path while a visitor or mapper walks the module tree. The first component
/// (the enum variant) is dropped.
#[derive(Default)]
struct PathTracker {
    parts: Vec<String>,
}

impl PathTracker {
    fn enter(&mut self, name: &str) {
        self.parts.push(name.to_string());
    }

    fn exit(&mut self) {
        self.parts.pop();
    }

    fn name(&self) -> String {
        self.parts
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    }
}

struct Exporter {
    path: PathTracker,
    tensors: Vec<NamedTensor>,
    ids: Vec<(String, u64)>,
    error: Option<ModelError>,
}

impl ModuleVisitor for Exporter {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let name = self.path.name();
        let values = match data_values(tensor.to_data(), &name) {
            Ok(v) => v,
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        };
        self.ids.push((name.clone(), param.id.val()));
        self.tensors.push(NamedTensor {
            name,
            shape: tensor.dims().to_vec(),
            values,
        });
    }
}

/// Named tensors with the parameter id of each, in module order.
pub type ExportedTensors = (Vec<NamedTensor>, Vec<(String, u64)>);

/// Every float parameter and buffer of `net` with its parameter id, in module order; a tensor
/// that cannot be read back is an error (never empty weights in a model file).
pub fn export_tensors(net: &Network) -> Result<ExportedTensors, ModelError> {
    let mut exporter = Exporter {
        path: PathTracker::default(),
        tensors: Vec::new(),
        ids: Vec::new(),
        error: None,
    };
    net.visit(&mut exporter);
    match exporter.error {
        Some(e) => Err(e),
        None => Ok((exporter.tensors, exporter.ids)),
    }
}

struct Importer<'a> {
    path: PathTracker,
    by_name: HashMap<&'a str, &'a NamedTensor>,
    ids: HashMap<&'a str, u64>,
    used: usize,
    errors: Vec<String>,
}

impl ModuleMapper for Importer<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.name();
        let Some(source) = self.by_name.get(name.as_str()).copied() else {
            self.errors.push(format!("missing tensor `{name}`"));
            return param;
        };
        let (id, old, mapper) = param.consume();
        if source.shape != old.dims().to_vec()
            || source.values.len() != source.shape.iter().product::<usize>()
        {
            self.errors.push(format!(
                "tensor `{name}` has shape {:?} ({} values), the model needs {:?}",
                source.shape,
                source.values.len(),
                old.dims()
            ));
            return Param::from_mapped_value(id, old, mapper);
        }
        self.used += 1;
        let mut fresh = Tensor::<D>::from_data(
            TensorData::new(source.values.clone(), old.dims()),
            &old.device(),
        );
        if old.is_require_grad() {
            fresh = fresh.require_grad();
        }
        let id = self
            .ids
            .get(name.as_str())
            .map(|v| ParamId::from(*v))
            .unwrap_or(id);
        Param::from_mapped_value(id, fresh, mapper)
    }
}

/// Loads `tensors` into `net` (which fixes the architecture and the device). With `ids`, the
/// parameter ids saved by [`export_tensors`] are restored as well.
pub fn import_tensors(
    net: Network,
    tensors: &[NamedTensor],
    ids: Option<&[(String, u64)]>,
) -> Result<Network, ModelError> {
    let architecture = match &net {
        Network::Lenet5(_) => "lenet5",
        Network::Alexnet(_) => "alexnet",
        Network::Vgg16(_) => "vgg16",
        Network::Resnet18(_) => "resnet18",
    };
    let mut importer = Importer {
        path: PathTracker::default(),
        by_name: tensors.iter().map(|t| (t.name.as_str(), t)).collect(),
        ids: ids
            .unwrap_or_default()
            .iter()
            .map(|(n, v)| (n.as_str(), *v))
            .collect(),
        used: 0,
        errors: Vec::new(),
    };
    let net = net.map(&mut importer);
    if importer.used != tensors.len() && importer.errors.is_empty() {
        importer.errors.push(format!(
            "{} tensors given but the model has {}",
            tensors.len(),
            importer.used
        ));
    }
    if importer.errors.is_empty() {
        Ok(net)
    } else {
        Err(ModelError::WeightMismatch {
            architecture: architecture.to_string(),
            message: importer.errors.join("; "),
        })
    }
}
