//! `model.bin`: what a trained model holds, how each format version of it
//! is read, and how its ensemble predicts.

use std::path::Path;

use anyhow::Context;
use ferrochem_chem::{EcfpOptions, ReadOptions};
use ferrochem_data::featurize::{Encoding, Featurizer, Fingerprint};
use ferrochem_data::weights::TargetScaling;
use ferrochem_data::{Dataset, Features, Matrix};
use ferrochem_nn::{ModelInput, Multitask};
use ferrochem_train::checkpoint::{self, FileKind};
use ferrochem_train::predict_dataset;
use serde::{Deserialize, Serialize};

use crate::train::TaskType;

/// What `model.bin` holds: everything `predict` needs, nothing that
/// differs between identical runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedModel {
    /// Layout version of this struct.
    pub format_version: u32,
    /// The networks of the ensemble (one for a single model); predictions
    /// are their mean.
    pub members: Vec<Multitask<f32>>,
    /// ECFP radius and length the model was trained on.
    pub radius: u32,
    /// See `radius`.
    pub bits: u32,
    /// How each member reads the fingerprint rows.
    pub encodings: Vec<Encoding>,
    /// Task names in output order.
    pub tasks: Vec<String>,
    /// Classification or regression.
    pub task_type: TaskType,
    /// Target standardization to undo on predictions (regression).
    pub scaling: Option<TargetScaling>,
}

/// The layout of [`SavedModel`] this build writes.
pub const MODEL_FORMAT_VERSION: u32 = 4;

/// The previous layout, which [`SavedModel`] also reads. It differs only
/// in recording a [`Fingerprint`] per member where this one records an
/// [`Encoding`]; the two enums' first variants are bits then counts, so its
/// bytes decode as the encodings that read those fingerprints as they are.
pub const MODEL_FORMAT_VERSION_3: u32 = 3;

/// Format 2 of `model.bin`, read and converted by
/// [`SavedModel::from_v2`]: one fingerprint kind for every member.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedModelV2 {
    pub format_version: u32,
    pub members: Vec<Multitask<f32>>,
    pub radius: u32,
    pub bits: u32,
    pub fingerprint: Fingerprint,
    pub tasks: Vec<String>,
    pub task_type: TaskType,
    pub scaling: Option<TargetScaling>,
}

impl SavedModel {
    /// A format 2 model in this format.
    pub fn from_v2(old: SavedModelV2) -> SavedModel {
        SavedModel {
            format_version: MODEL_FORMAT_VERSION,
            encodings: vec![Encoding::from(old.fingerprint); old.members.len()],
            members: old.members,
            radius: old.radius,
            bits: old.bits,
            tasks: old.tasks,
            task_type: old.task_type,
            scaling: old.scaling,
        }
    }

    /// The featurizer whose rows serve every member (see
    /// [`featurization_kind`]).
    pub fn featurizer(&self) -> Featurizer {
        Featurizer {
            ecfp: EcfpOptions { radius: self.radius, n_bits: self.bits },
            read: ReadOptions::default(),
            fingerprint: featurization_kind(&self.encodings),
        }
    }

    /// Mean and spread (population standard deviation) over the members of
    /// the predictions for `rows` (multisets of bit indices, as
    /// [`SavedModel::featurizer`] makes them), in the original units.
    pub fn predict_rows(&self, rows: &[&[u32]]) -> anyhow::Result<(Matrix<f32>, Matrix<f32>)> {
        let mut inputs: Vec<(Encoding, Features)> = Vec::new();
        for &encoding in &self.encodings {
            if !inputs.iter().any(|(e, _)| *e == encoding) {
                inputs.push((encoding, input_features(encoding, self.bits, rows)?));
            }
        }
        let input_of =
            |encoding: Encoding| &inputs.iter().find(|(e, _)| *e == encoding).expect("built").1;
        self.combine(|member, encoding| {
            let input = match input_of(encoding) {
                Features::Sparse(x) => ModelInput::Sparse(x),
                Features::Dense(x) => ModelInput::Dense(x),
            };
            Ok(member.predict(input)?)
        })
    }

    /// Like [`SavedModel::predict_rows`] over a whole data set given in
    /// each member's encoding, batch by batch, so memory stays that of a
    /// batch of activations.
    pub fn predict_dataset<'d>(
        &self,
        data_of: impl Fn(Encoding) -> &'d dyn Dataset,
    ) -> anyhow::Result<(Matrix<f32>, Matrix<f32>)> {
        self.combine(|member, encoding| Ok(predict_dataset(member, data_of(encoding), 1024)?))
    }

    /// Mean and spread of `predict_member` over the members, each first
    /// put back in the original units.
    fn combine(
        &self,
        mut predict_member: impl FnMut(&Multitask<f32>, Encoding) -> anyhow::Result<Matrix<f32>>,
    ) -> anyhow::Result<(Matrix<f32>, Matrix<f32>)> {
        let mut each = Vec::with_capacity(self.members.len());
        for (member, &encoding) in self.members.iter().zip(&self.encodings) {
            let mut prediction = predict_member(member, encoding)?;
            if let Some(scaling) = &self.scaling {
                scaling.undo(&mut prediction);
            }
            each.push(prediction);
        }
        Ok(mean_and_spread(&each))
    }
}

/// Entry-wise mean and population standard deviation of equally shaped
/// matrices, accumulated in f64 in member order.
fn mean_and_spread(each: &[Matrix<f32>]) -> (Matrix<f32>, Matrix<f32>) {
    let (nrows, ncols) = (each[0].nrows(), each[0].ncols());
    let n = each.len() as f64;
    let mut mean = Matrix::zeros(nrows, ncols);
    let mut spread = Matrix::zeros(nrows, ncols);
    for i in 0..nrows * ncols {
        let m = each.iter().map(|p| f64::from(p.as_slice()[i])).sum::<f64>() / n;
        let v = each.iter().map(|p| (f64::from(p.as_slice()[i]) - m).powi(2)).sum::<f64>() / n;
        mean.as_mut_slice()[i] = m as f32;
        spread.as_mut_slice()[i] = v.sqrt() as f32;
    }
    (mean, spread)
}

/// The model input of rows given as multisets of bit indices (see
/// [`Featurizer::features`]), in `encoding`.
pub fn input_features(
    encoding: Encoding,
    n_bits: u32,
    rows: &[&[u32]],
) -> anyhow::Result<Features> {
    let x = encoding.encode(n_bits, rows).context("fingerprint bits out of range")?;
    Ok(Features::Sparse(x))
}

/// The fingerprint rows are computed in for members of `encodings`:
/// counts if any member reads them, since bits follow from counts and not
/// the other way round.
pub fn featurization_kind(encodings: &[Encoding]) -> Fingerprint {
    match encodings.iter().any(|e| e.fingerprint() == Fingerprint::Counts) {
        true => Fingerprint::Counts,
        false => Fingerprint::Bits,
    }
}

/// Reads `dir/model.bin`, or `dir` itself if it is a file, in any format
/// this build knows, as this build's [`SavedModel`]; a format it does not
/// know is refused by name.
pub fn load(dir: &Path) -> anyhow::Result<SavedModel> {
    let path = if dir.is_file() { dir.to_path_buf() } else { dir.join("model.bin") };
    if !path.exists() && dir.join("fold-1").join("model.bin").exists() {
        anyhow::bail!(
            "{}: no model.bin here: this is a cross-validation run (--folds), which keeps a \
             model per fold in fold-1, fold-2, …; give one of those, or train without --folds \
             for one model of all the data",
            dir.display()
        );
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    // Every layout opens with its version, so it is read on its own first
    // and the rest decoded by the layout it names.
    let version: u32 = checkpoint::decode_leading(FileKind::Model, &bytes, &path)?;
    let saved = match version {
        2 => {
            let old: SavedModelV2 = checkpoint::decode(FileKind::Model, &bytes, &path)?;
            SavedModel::from_v2(old)
        }
        MODEL_FORMAT_VERSION_3 | MODEL_FORMAT_VERSION => SavedModel {
            format_version: MODEL_FORMAT_VERSION,
            ..checkpoint::decode(FileKind::Model, &bytes, &path)?
        },
        newer if newer > MODEL_FORMAT_VERSION => anyhow::bail!(
            "{}: model format {newer} is newer than this build reads (2 to {}); use a newer ferrochem",
            path.display(),
            MODEL_FORMAT_VERSION
        ),
        older => anyhow::bail!(
            "{}: model format {older} is older than this build reads (2 to {}); retrain with this version",
            path.display(),
            MODEL_FORMAT_VERSION
        ),
    };
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use ferrochem_nn::MultitaskConfig;
    use serde::Serialize;

    use super::*;

    #[test]
    fn a_model_of_format_2_loads_with_its_fingerprint_for_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let member = |seed| MultitaskConfig::classifier(64, 2).init(seed);
        let old = SavedModelV2 {
            format_version: 2,
            members: vec![member(1), member(2)],
            radius: 2,
            bits: 64,
            fingerprint: Fingerprint::Counts,
            tasks: vec!["a".to_owned(), "b".to_owned()],
            task_type: TaskType::Classification,
            scaling: None,
        };
        checkpoint::save(FileKind::Model, &old, &dir.path().join("model.bin")).unwrap();
        let saved = load(dir.path()).unwrap();
        assert_eq!(saved.format_version, MODEL_FORMAT_VERSION);
        assert_eq!(saved.encodings, [Encoding::Counts, Encoding::Counts]);
        assert_eq!(saved.tasks, old.tasks);
        let rows: [&[u32]; 2] = [&[1, 1, 5], &[3]];
        let (mean, _) = saved.predict_rows(&rows).unwrap();
        assert_eq!((mean.nrows(), mean.ncols()), (2, 2));
    }

    /// Format 3 of `model.bin`, as the builds that wrote it declared it.
    #[derive(Serialize)]
    struct SavedModelV3 {
        format_version: u32,
        members: Vec<Multitask<f32>>,
        radius: u32,
        bits: u32,
        fingerprints: Vec<Fingerprint>,
        tasks: Vec<String>,
        task_type: TaskType,
        scaling: Option<ferrochem_data::weights::TargetScaling>,
    }

    #[test]
    fn a_model_of_format_3_loads_with_each_members_fingerprint_read_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let members = vec![
            MultitaskConfig::classifier(64, 2).init(1),
            MultitaskConfig::classifier(64, 2).init(2),
        ];
        let old = SavedModelV3 {
            format_version: MODEL_FORMAT_VERSION_3,
            members: members.clone(),
            radius: 2,
            bits: 64,
            fingerprints: vec![Fingerprint::Counts, Fingerprint::Bits],
            tasks: vec!["a".to_owned(), "b".to_owned()],
            task_type: TaskType::Classification,
            scaling: None,
        };
        checkpoint::save(FileKind::Model, &old, &dir.path().join("model.bin")).unwrap();
        let saved = load(dir.path()).unwrap();
        assert_eq!(saved.format_version, MODEL_FORMAT_VERSION);
        assert_eq!(saved.encodings, [Encoding::Counts, Encoding::Bits]);
        // The counts member sees the repeated bit twice, the bits member once.
        let rows: [&[u32]; 1] = [&[1, 1, 5]];
        let (mean, _) = saved.predict_rows(&rows).unwrap();
        let counts = Encoding::Counts.encode(64, &rows).unwrap();
        let bits = Encoding::Bits.encode(64, &rows).unwrap();
        let by_hand: Vec<f32> = members[0]
            .predict(ferrochem_nn::ModelInput::Sparse(&counts))
            .unwrap()
            .as_slice()
            .iter()
            .zip(members[1].predict(ferrochem_nn::ModelInput::Sparse(&bits)).unwrap().as_slice())
            .map(|(a, b)| ((f64::from(*a) + f64::from(*b)) / 2.0) as f32)
            .collect();
        assert_eq!(mean.as_slice(), by_hand.as_slice());
    }

    #[test]
    fn a_model_of_a_later_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let later = SavedModel {
            format_version: MODEL_FORMAT_VERSION + 1,
            members: vec![MultitaskConfig::classifier(64, 1).init(1)],
            radius: 2,
            bits: 64,
            encodings: vec![Encoding::Bits],
            tasks: vec!["a".to_owned()],
            task_type: TaskType::Classification,
            scaling: None,
        };
        checkpoint::save(FileKind::Model, &later, &dir.path().join("model.bin")).unwrap();
        let message = load(dir.path()).unwrap_err().to_string();
        assert!(message.contains("is newer than this build reads"), "{message}");
    }
}
