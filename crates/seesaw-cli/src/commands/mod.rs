pub mod bench_data;
pub mod dataset_args;
pub mod inspect;
pub mod simulate;
