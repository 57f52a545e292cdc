//! Reductions between architectures, checked numerically after copying parameters from one
//! model into the other (direct `Param` assignment: the blocks' fields are public):
//! - MMoE with one expert is shared-bottom (the one gate weight is always 1);
//! - CGC with no task-specific experts is MMoE (each task gate sees only the shared experts);
//! - cross-stitch with α = I is independent single-task networks.
//!
//! Each test also checks that the reduction is not vacuous: perturbing the one thing that makes
//! the architectures differ (a second expert, α off the diagonal) changes the outputs.

mod common;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use seesaw_models::blocks::{CrossStitchUnit, ExpertBank};
use seesaw_models::models::{
    CgcConfig, CrossStitchConfig, MmoeConfig, SharedBottomConfig, SingleTaskConfig,
};
use seesaw_models::{
    Architecture, GateWeights, ModelConfig, ModelInput, MultiTaskModel, Network, RegressionHead,
};

use common::{max_abs_diff, random_batch, tiny_context, tiny_schema, to_vec};

fn device() -> Device {
    Device::flex()
}

fn model(arch: Architecture) -> MultiTaskModel {
    let config = ModelConfig {
        architecture: arch,
        embedding_dim: 4,
        tower_hidden: vec![5],
        regression_head: RegressionHead::Sigmoid,
        cmi: None,
    };
    MultiTaskModel::new(&config, &tiny_context(&config), &device()).unwrap()
}

fn outputs(m: &MultiTaskModel, input: &ModelInput) -> Vec<Vec<f64>> {
    m.forward(input).tasks.iter().map(|t| to_vec(&t.tensor)).collect()
}

fn gate_weights(m: &MultiTaskModel, input: &ModelInput) -> Vec<GateWeights> {
    m.forward(&input.clone().with_diagnostics()).gates
}

fn mmoe_arch(experts: usize, expert_hidden: Vec<usize>, gate_temperature: f32) -> Architecture {
    Architecture::Mmoe(MmoeConfig { experts, expert_hidden, gate_temperature })
}

fn assert_same(a: &[Vec<f64>], b: &[Vec<f64>]) {
    for (x, y) in a.iter().zip(b) {
        let d = max_abs_diff(x, y);
        assert!(d <= 1e-5, "outputs differ by {d}");
    }
}

fn assert_differ(a: &[Vec<f64>], b: &[Vec<f64>]) {
    let d = a.iter().zip(b).map(|(x, y)| max_abs_diff(x, y)).fold(0.0, f64::max);
    assert!(d > 1e-4, "perturbation did not change the outputs ({d})");
}

fn input() -> ModelInput {
    ModelInput::from_batch(&random_batch(&tiny_schema(), 16, 42), &device())
}

/// A Linear's weight [in, out] and bias [out] as expert parameters [1, in, out], [1, 1, out].
fn linear_as_expert(linear: &Linear) -> (Tensor<3>, Tensor<3>) {
    let w = linear.weight.val();
    let [i, o] = w.dims();
    let b = linear.bias.as_ref().unwrap().val();
    (w.reshape([1, i, o]), b.reshape([1, 1, o]))
}

#[test]
fn mmoe_with_one_expert_equals_shared_bottom() {
    let hidden = vec![8, 6];
    let sb = model(Architecture::SharedBottom(SharedBottomConfig { hidden: hidden.clone() }));
    let mut mmoe = model(mmoe_arch(1, hidden, 1.0));
    let (Network::SharedBottom(src), Network::Mmoe(dst)) = (&sb.network, &mut mmoe.network) else {
        unreachable!()
    };
    dst.embedding = src.embedding.clone();
    dst.towers = src.towers.clone();
    for (layer, linear) in dst.experts.layers.iter_mut().zip(&src.bottom.layers) {
        let (w, b) = linear_as_expert(linear);
        layer.weight = Param::from_tensor(w);
        layer.bias = Param::from_tensor(b);
    }
    let input = input();
    let want = outputs(&sb, &input);
    assert_same(&outputs(&mmoe, &input), &want);

    // Not vacuous: a second expert (with a gate that can weigh it) changes the result.
    let Network::Mmoe(dst) = &mmoe.network else { unreachable!() };
    let mut two = model(mmoe_arch(2, vec![8, 6], 1.0));
    let Network::Mmoe(m2) = &mut two.network else { unreachable!() };
    m2.embedding = dst.embedding.clone();
    m2.towers = dst.towers.clone();
    assert_differ(&outputs(&two, &input), &want);
}

#[test]
fn cgc_without_task_experts_equals_mmoe() {
    let expert_hidden = vec![8, 6];
    for temperature in [1.0f32, 2.5] {
        let mmoe = model(mmoe_arch(3, expert_hidden.clone(), temperature));
        let mut cgc = model(Architecture::Cgc(CgcConfig {
            shared_experts: 3,
            task_experts: 0,
            expert_hidden: expert_hidden.clone(),
            gate_temperature: temperature,
        }));
        let (Network::Mmoe(src), Network::Cgc(dst)) = (&mmoe.network, &mut cgc.network) else {
            unreachable!()
        };
        assert_eq!(dst.levels.len(), 1);
        assert!(dst.levels[0].task_experts.is_empty() && dst.levels[0].shared_gate.is_none());
        dst.embedding = src.embedding.clone();
        dst.towers = src.towers.clone();
        dst.levels[0].shared_experts = Some(src.experts.clone());
        dst.levels[0].task_gates = src.gates.clone();
        let input = input();
        let want = outputs(&mmoe, &input);
        assert_same(&outputs(&cgc, &input), &want);
        // The gates agree too.
        let (ga, gb) = (gate_weights(&mmoe, &input), gate_weights(&cgc, &input));
        assert_eq!(ga.len(), 2);
        assert_eq!(ga.len(), gb.len());
        for (a, b) in ga.iter().zip(&gb) {
            assert_eq!(a.name, b.name);
            assert!(max_abs_diff(&to_vec(&a.weights), &to_vec(&b.weights)) <= 1e-6);
        }

        // Not vacuous: different shared experts give different outputs.
        let Network::Cgc(dst) = &mut cgc.network else { unreachable!() };
        dst.levels[0].shared_experts =
            Some(ExpertBank::new(3, src.embedding.input_dim(), &expert_hidden, &device()));
        assert_differ(&outputs(&cgc, &input), &want);
    }
}

#[test]
fn cross_stitch_with_identity_alpha_equals_single_task_networks() {
    let hidden = vec![8, 6];
    let st = model(Architecture::SingleTask(SingleTaskConfig { hidden: hidden.clone() }));
    let mut cs = model(Architecture::CrossStitch(CrossStitchConfig { hidden }));
    let (Network::SingleTask(src), Network::CrossStitch(dst)) = (&st.network, &mut cs.network)
    else {
        unreachable!()
    };
    for (column, net) in dst.columns.iter_mut().zip(&src.nets) {
        column.embedding = net.embedding.clone();
        column.mlp = net.mlp.clone();
        column.tower = net.tower.clone();
    }
    let input = input();
    let want = outputs(&st, &input);

    // Freshly initialised α (0.9 / 0.1) mixes the columns: outputs differ.
    assert_differ(&outputs(&cs, &input), &want);

    let identity =
        Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]), &device());
    for unit in dst_units(&mut cs) {
        unit.alpha = Param::from_tensor(identity.clone());
    }
    assert_same(&outputs(&cs, &input), &want);
}

fn dst_units(m: &mut MultiTaskModel) -> &mut Vec<CrossStitchUnit> {
    let Network::CrossStitch(cs) = &mut m.network else { unreachable!() };
    &mut cs.units
}

#[test]
fn cross_stitch_alpha_starts_convex() {
    let unit = CrossStitchUnit::new(3, &device());
    let a = to_vec(&unit.alpha.val());
    for k in 0..3 {
        let row = &a[3 * k..3 * k + 3];
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        for (j, &v) in row.iter().enumerate() {
            let want = if j == k { 0.9 } else { 0.05 };
            assert!((v - want).abs() < 1e-6, "alpha[{k}][{j}] = {v}");
        }
    }
}
