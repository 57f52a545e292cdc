//! One file per architecture. Each model returns the raw per-task tower outputs ([B, 1] each,
//! in task order); `MultiTaskModel` applies the regression head, so no model repeats it.

pub mod cross_stitch;
pub mod logistic;
pub mod mmoe;
pub mod ple;
pub mod shared_bottom;
pub mod single_task;

pub use cross_stitch::CrossStitch;
pub use logistic::Logistic;
pub use mmoe::Mmoe;
pub use ple::Ple;
pub use shared_bottom::SharedBottom;
pub use single_task::SingleTask;
