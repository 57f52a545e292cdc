//! `[model.cmi]` as part of the model: which architectures take it, what it refuses, and that
//! the term it adds is what the config says.

mod common;

use burn::tensor::Device;
use seesaw_data::feature_map::{TaskInfo, TaskKind};
use seesaw_models::cmi::term::{ADVERSARIAL_TERM, JOINT_TERM};
use seesaw_models::cmi::{CmiConfig, CmiSampler, CmiUse};
use seesaw_models::models::{MmoeConfig, SharedBottomConfig, SingleTaskConfig};
use seesaw_models::{
    Architecture, ModelConfig, ModelContext, ModelInput, ModelTargets, MultiTaskModel,
};

fn tasks() -> Vec<TaskInfo> {
    vec![
        TaskInfo::new("click", TaskKind::Binary),
        TaskInfo::new("watch_ratio", TaskKind::Regression),
    ]
}

fn build(
    architecture: Architecture,
    cmi: CmiConfig,
) -> seesaw_models::error::Result<MultiTaskModel> {
    let config = ModelConfig {
        architecture,
        embedding_dim: 3,
        tower_hidden: vec![4],
        cmi: Some(cmi),
        ..ModelConfig::default()
    };
    let context = ModelContext::new(&config, common::tiny_schema(), tasks());
    MultiTaskModel::new(&config, &context, &Device::flex())
}

fn mmoe() -> Architecture {
    Architecture::Mmoe(MmoeConfig { experts: 2, expert_hidden: vec![5], gate_temperature: 1.0 })
}

#[test]
fn architectures_without_a_shared_representation_are_refused_by_name() {
    let err =
        build(Architecture::SingleTask(SingleTaskConfig { hidden: vec![4] }), CmiConfig::default())
            .unwrap_err()
            .to_string();
    assert!(err.contains("[model.cmi]") && err.contains("single_task"), "{err}");
    let bad_pair =
        CmiConfig { pairs: vec![["click".into(), "like".into()]], ..CmiConfig::default() };
    let err = build(mmoe(), bad_pair).unwrap_err().to_string();
    assert!(err.contains("'like'") && err.contains("click, watch_ratio"), "{err}");
    let self_pair =
        CmiConfig { pairs: vec![["click".into(), "click".into()]], ..CmiConfig::default() };
    assert!(build(mmoe(), self_pair).is_err());
    assert!(build(mmoe(), CmiConfig { beta: f32::NAN, ..CmiConfig::default() }).is_err());
}

#[test]
fn the_term_is_named_by_its_use_and_ramps_in_over_the_warm_up() {
    let batch = common::random_batch(&common::tiny_schema(), 16, 3);
    let device = Device::flex();
    let input = ModelInput::from_batch(&batch, &device);
    let shared = Architecture::SharedBottom(SharedBottomConfig { hidden: vec![6] });
    for (use_, sampler, name) in [
        (CmiUse::JointHead, CmiSampler::Kernel, JOINT_TERM),
        (CmiUse::Adversarial, CmiSampler::Kernel, ADVERSARIAL_TERM),
        (CmiUse::Adversarial, CmiSampler::Variational, ADVERSARIAL_TERM),
    ] {
        let cmi =
            CmiConfig { use_, sampler, warmup_steps: 100, neighbours: 4, ..CmiConfig::default() };
        for architecture in [shared.clone(), mmoe()] {
            let model = build(architecture, cmi.clone()).unwrap();
            let outputs = model.forward(&input);
            assert!(outputs.shared.is_some(), "h is always there for the term");
            let term = |step| {
                let targets = ModelTargets::from_batch(&batch, &device).at_step(step);
                let terms = model.loss(&outputs, &targets);
                assert_eq!(terms.auxiliary.len(), 1);
                assert_eq!(terms.auxiliary[0].0, name);
                terms.auxiliary[0].1.clone().into_scalar::<f32>()
            };
            let (early, late) = (term(10), term(200));
            assert!(early.is_finite() && late.is_finite());
            match use_ {
                // β ramps: the joint term at step 10 is a tenth of the full one.
                CmiUse::JointHead => assert!(
                    (early * 10.0 - late).abs() < 1e-4 * late.abs().max(1.0),
                    "{early} {late}"
                ),
                // The critic's own loss does not ramp (only the reversed gradient on h does).
                CmiUse::Adversarial => assert!((early - late).abs() < 1e-6, "{early} {late}"),
            }
        }
    }
}
