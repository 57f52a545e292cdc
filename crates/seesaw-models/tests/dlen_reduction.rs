//! DLEN with tied heads and no supervision (γ = 0) is its base architecture: with the base's
//! weights loaded into DLEN's base (a burn record: the same module type), the same outputs and
//! the same loss, bit for bit, for every base with a shared representation. And the reduction is
//! not vacuous: untying the heads changes the outputs.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use seesaw_models::models::DlenConfig;
use seesaw_models::{Architecture, ModelConfig, ModelInput, ModelTargets, MultiTaskModel, Network};

use common::{max_abs_diff, random_batch, tiny_context, tiny_schema, to_vec};

fn build(architecture: Architecture) -> MultiTaskModel {
    let config = ModelConfig { architecture, embedding_dim: 4, ..ModelConfig::default() };
    MultiTaskModel::new(&config, &tiny_context(&config), &Device::flex()).unwrap()
}

/// `dlen` with its base's weights replaced by `base`'s.
fn with_base_weights(mut dlen: MultiTaskModel, base: &MultiTaskModel) -> MultiTaskModel {
    let Network::Dlen(d) = &mut dlen.network else { panic!("not a dlen model") };
    let inner = d.base.pop().unwrap();
    d.base.push(inner.load_record(base.network.clone().into_record()));
    dlen
}

fn dlen(base: &Architecture, tie_heads: bool, gamma: f32) -> Architecture {
    Architecture::Dlen(DlenConfig {
        base: Box::new(base.clone()),
        gamma,
        tie_heads,
        emotion_hidden: None,
        positive_when: Some(vec!["click".parse().unwrap()]),
        negative_when: Some(vec!["watch_ratio < 0.3".parse().unwrap()]),
    })
}

#[test]
fn tied_heads_without_supervision_are_the_base_architecture() {
    let batch = random_batch(&tiny_schema(), 32, 11);
    let device = Device::flex();
    let input = ModelInput::from_batch(&batch, &device);
    let targets = ModelTargets::from_batch(&batch, &device);
    let bases: Vec<Architecture> = Architecture::default_set()
        .into_iter()
        .filter(|a| !matches!(a, Architecture::Logistic(_) | Architecture::SingleTask(_)))
        .collect();
    assert_eq!(bases.len(), 5, "shared-bottom, cross-stitch, MMoE, CGC, PLE");
    for base in &bases {
        let name = base.name();
        let plain = build(base.clone());
        let tied = with_base_weights(build(dlen(base, true, 0.0)), &plain);
        let untied = with_base_weights(build(dlen(base, false, 0.0)), &plain);
        let (p, t, u) = (plain.forward(&input), tied.forward(&input), untied.forward(&input));
        for k in 0..p.tasks.len() {
            assert_eq!(p.tasks[k].kind, t.tasks[k].kind, "{name}");
            let (a, b) = (to_vec(&p.tasks[k].tensor), to_vec(&t.tasks[k].tensor));
            assert_eq!(max_abs_diff(&a, &b), 0.0, "{name}, task {k}: not the base's outputs");
        }
        let (lp, lt) = (plain.loss(&p, &targets), tied.loss(&t, &targets));
        assert!(lt.auxiliary.is_empty(), "{name}: gamma = 0 adds no term");
        for (a, b) in lp.tasks.iter().zip(&lt.tasks) {
            let a: f32 = a.clone().unwrap().into_scalar();
            let b: f32 = b.clone().unwrap().into_scalar();
            assert_eq!(a, b, "{name}: losses differ");
        }
        // Untied, the binary task becomes a mixture: a different prediction.
        let binary = |o: &seesaw_models::ModelOutputs| to_vec(&o.tasks[0].prediction());
        assert!(max_abs_diff(&binary(&p), &binary(&u)) > 1e-4, "{name}: untying did nothing");
    }
}
