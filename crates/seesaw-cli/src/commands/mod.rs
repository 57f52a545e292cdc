pub mod bench_data;
pub mod compare;
pub mod dataset_args;
pub mod eval;
pub mod inspect;
pub mod simulate;
pub mod train;
pub mod training_progress;
