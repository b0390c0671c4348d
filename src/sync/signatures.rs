//! The block signatures of small files, read ahead from their parts'
//! bundles: each bundle is opened once and every signature the plan's deltas
//! need is read with many requests in flight, rather than an open, a read and
//! a close for each file. A signature that cannot be read here is read again
//! when its file is fetched, and failing that the file is fetched whole.

use std::collections::HashMap;

use futures::{StreamExt, stream};

use super::apply::{KnownContent, read_exact_at};
use super::inventory::Inventory;
use super::plan::Plan;
use crate::delta::signature::signature_len;
use crate::manifest::path::RelPath;
use crate::manifest::verify::VerifiedFile;
use crate::transport::{Source, Throttled};

/// Signature reads in flight on one bundle.
const READS_IN_FLIGHT: usize = 32;

/// Signatures read ahead, by the path of the file they describe.
#[derive(Default)]
pub(crate) struct BundledSignatures(HashMap<RelPath, Vec<u8>>);

impl BundledSignatures {
    /// Reads the bundled signatures of the files of `plan` that will be
    /// assembled from a local copy: those with an old copy or a partial
    /// download in the store and no copy of their content elsewhere.
    pub(crate) async fn read<S: Source>(
        source: &Throttled<S>,
        plan: &Plan<'_>,
        inventory: &Inventory,
        known: &KnownContent,
    ) -> BundledSignatures {
        let mut by_bundle: HashMap<&RelPath, Vec<(&VerifiedFile, u64)>> = HashMap::new();
        for file in &plan.fetch {
            let Some(location) = file.block_signature() else {
                continue;
            };
            let has_basis = inventory.entries.contains_key(file.path().as_str())
                || inventory.temp_of(file.path()).is_some();
            if let Some(offset) = location.offset()
                && has_basis
                && known.local_copy(file.sha256()).is_none()
            {
                by_bundle
                    .entry(location.path())
                    .or_default()
                    .push((*file, offset));
            }
        }
        let mut read = HashMap::new();
        for (bundle, files) in by_bundle {
            let Ok(opened) = source.open(bundle.as_str()).await else {
                continue;
            };
            let handle = &opened;
            let signatures: Vec<_> = stream::iter(files)
                .map(|(file, offset)| async move {
                    let len = signature_len(file.size());
                    let bytes = read_exact_at(source, handle, offset, len as u32).await;
                    (
                        file.path().clone(),
                        bytes.ok().filter(|b| b.len() as u64 == len),
                    )
                })
                .buffer_unordered(READS_IN_FLIGHT)
                .collect()
                .await;
            source.close(opened).await;
            read.extend(
                signatures
                    .into_iter()
                    .filter_map(|(path, bytes)| Some((path, bytes?))),
            );
        }
        BundledSignatures(read)
    }

    /// The signature read ahead for `file`.
    pub(crate) fn get(&self, file: &VerifiedFile) -> Option<&[u8]> {
        self.0.get(file.path()).map(Vec::as_slice)
    }
}
