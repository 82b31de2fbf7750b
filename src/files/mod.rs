//! Files on disk: where they live, the run folder, writes that cannot be seen half done, bounded
//! text reads and PNG grids.

pub mod atomic;
pub mod image;
pub mod paths;
pub mod run_dir;
pub mod text_file;
