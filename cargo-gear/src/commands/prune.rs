//! `cargo gear prune`: remove local images of this workspace's layers whose content tags
//! are no longer current — never one a current layer or any container uses.

use std::collections::{BTreeMap, HashSet};

use crate::cli::PruneArgs;
use crate::engine::{Engine, EngineError, ImageSummary};
use crate::error::CliError;
use crate::request::Session;
use crate::schedule::LAYER_LABEL;

/// Removes (or with `--dry-run` lists) outdated images, keeping the `--keep` most recent per layer.
pub fn run(session: &Session, args: &PruneArgs) -> Result<(), CliError> {
    let all = session.graph.build_order().to_vec();
    let plan = session.plan(&all)?;
    // This workspace's images: a built layer's repository and name. Other workspaces may
    // have layers of the same name in other repositories; they are not ours to prune.
    let repos: BTreeMap<&str, &str> = plan
        .layers
        .iter()
        .filter_map(|l| Some((l.built()?.image.as_str(), l.name.as_str())))
        .collect();
    // Current content tags, and gears' version tags: a version tag is never pruned away.
    let current: HashSet<&str> = plan
        .layers
        .iter()
        .filter_map(|l| l.built())
        .flat_map(|b| {
            let version = b.gear.as_ref().map(|g| g.version_tag.as_str());
            [Some(b.content_tag.as_str()), version]
        })
        .flatten()
        .collect();
    let out = &session.out;
    session.runtime()?.block_on(async {
        let engine = session.engine().await?;
        let in_use = engine.container_images().await?;
        let images = engine.list_images(LAYER_LABEL).await?;
        let mut current_ids = HashSet::new();
        let mut by_layer: BTreeMap<String, Vec<ImageSummary>> = BTreeMap::new();
        for image in images {
            let label = image.labels.get(LAYER_LABEL).map(String::as_str);
            let ours = |tag: &&String| {
                repos
                    .get(crate::engine::split_tag(tag).0)
                    .is_some_and(|name| Some(*name) == label)
            };
            // Only our tags are considered (another workspace may tag the same image); an
            // untagged image cannot be attributed to a workspace.
            let Some(layer) = image
                .repo_tags
                .iter()
                .find(ours)
                .and_then(|t| repos.get(crate::engine::split_tag(t).0))
                .map(|n| n.to_string())
            else {
                continue;
            };
            let mut image = image.clone();
            let all_tags = image.repo_tags.len();
            image.repo_tags.retain(|t| ours(&t));
            if image.repo_tags.len() < all_tags {
                // Untagging ours leaves the image to its other names: nothing is freed.
                image.size = 0;
            }
            if image.repo_tags.iter().any(|t| current.contains(t.as_str())) {
                current_ids.insert(image.id.clone());
                continue;
            }
            by_layer.entry(layer).or_default().push(image);
        }
        let (mut removed, mut bytes, mut kept_in_use) = (0usize, 0u64, 0usize);
        for (layer, mut images) in by_layer {
            images.sort_by_key(|i| std::cmp::Reverse(i.created));
            for image in images.into_iter().skip(args.keep) {
                let tags = image.repo_tags.join(", ");
                let shown = if tags.is_empty() {
                    image.id.clone()
                } else {
                    tags
                };
                if in_use.contains(&image.id) || current_ids.contains(&image.id) {
                    out.note(format!("keeping {shown} ({layer}): a container uses it"));
                    kept_in_use += 1;
                    continue;
                }
                if args.dry_run {
                    out.status(
                        "Would remove",
                        format!("{shown} ({layer}, {})", size(image.size)),
                    );
                } else {
                    match remove(&engine, &image).await {
                        Ok(()) => out.status(
                            "Removed",
                            format!("{shown} ({layer}, {})", size(image.size)),
                        ),
                        Err(e) => {
                            out.note(format!("keeping {shown} ({layer}): {e}"));
                            kept_in_use += 1;
                            continue;
                        }
                    }
                }
                removed += 1;
                bytes += image.size;
            }
        }
        let verb = if args.dry_run { "Would free" } else { "Freed" };
        out.status(
            verb,
            format!(
                "{removed} images, up to {} (layers shared with other images stay){}",
                size(bytes),
                if kept_in_use > 0 {
                    format!("; {kept_in_use} kept in use")
                } else {
                    String::new()
                }
            ),
        );
        Ok(())
    })
}

/// Untags every tag of the image (the last one deletes it). Never forced: the engine
/// refuses to remove an image a container or a child image needs.
async fn remove(engine: &Engine, image: &ImageSummary) -> Result<(), EngineError> {
    for tag in &image.repo_tags {
        engine.remove_image(tag, false).await?;
    }
    Ok(())
}

fn size(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
