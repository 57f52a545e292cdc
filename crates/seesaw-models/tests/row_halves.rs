//! A batch scored in two halves side by side (`row_halves.rs`, what `seesaw evaluate` and the
//! inference benchmark do) must give every row the prediction the whole batch gives it: rows
//! are scored independently, so only float rounding in row-count-dependent blocking may differ
//! (one unit in the last place on the logistic model, nothing on the others).

mod common;

use burn::tensor::Device;
use seesaw_models::row_halves::{MIN_ROWS_PER_HALF, join_rows, score_in_halves};
use seesaw_models::{ModelConfig, ModelInput, MultiTaskModel, helper_available};

use common::{every_architecture, random_batch, tiny_context, tiny_schema};

#[test]
fn halves_scored_side_by_side_equal_the_whole_batch() {
    let device = Device::flex();
    // Odd, so that the halves differ in length.
    let batch = random_batch(&tiny_schema(), 2 * MIN_ROWS_PER_HALF + 77, 5);
    for architecture in every_architecture(vec![32, 16]) {
        let config = ModelConfig {
            architecture,
            embedding_dim: 8,
            tower_hidden: vec![8],
            ..ModelConfig::default()
        };
        let model = MultiTaskModel::new(&config, &tiny_context(&config), &device).unwrap();
        let score = |rows: &seesaw_data::batch::Batch| -> Vec<Vec<f32>> {
            let outputs = model.forward(&ModelInput::from_batch(rows, &device));
            outputs.predictions().into_iter().map(seesaw_models::to_vec).collect()
        };
        let whole = score(&batch);
        let parts = score_in_halves(&batch, score);
        assert_eq!(parts.len(), if helper_available() { 2 } else { 1 });
        let joined = join_rows(parts);
        assert_eq!(joined.len(), whole.len());
        for (task, (halves, whole)) in joined.iter().zip(&whole).enumerate() {
            assert_eq!(halves.len(), batch.size);
            let worst = halves.iter().zip(whole).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst <= 1e-6, "{:?} task {task}: off by {worst}", config.architecture);
        }
    }
}

#[test]
fn small_batches_are_scored_whole() {
    let batch = random_batch(&tiny_schema(), 2 * MIN_ROWS_PER_HALF - 1, 6);
    let parts = score_in_halves(&batch, |rows| rows.rows.clone());
    assert_eq!(parts, vec![batch.rows.clone()]);
    let batch = random_batch(&tiny_schema(), 2 * MIN_ROWS_PER_HALF + 1, 6);
    let parts = score_in_halves(&batch, |rows| rows.rows.clone());
    assert_eq!(parts.concat(), batch.rows, "the halves cover the rows, in order");
}
