//! The state store as the reading commands (`history`, `show`, `replay`) open it.

use super::Exit;
use super::args::GlobalArgs;
use crate::secrets::Masker;
use crate::state::{StateLocation, Store};

/// Opens the store for reading commands; `None` (and nothing created) where there is none yet.
/// An unusable store is reported, and is exit status 2.
pub fn open_existing(global: &GlobalArgs, masker: &Masker) -> Result<Option<Store>, Exit> {
    Store::open_existing(&StateLocation::from_flag(&global.state), masker.clone()).map_err(
        |error| {
            eprintln!("error: {error}");
            Exit::Invalid
        },
    )
}
