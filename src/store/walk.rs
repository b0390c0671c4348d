//! A folder tree walked level by level, each level's folders shared among a
//! few threads: on a cold cache a walk waits on the disk, which answers several
//! requests at once, and on a warm one the per-entry system calls of a single
//! thread wait on each other. The inventory scan and the ACL repair use it.

/// Runs `visit` on the folders of each level, starting with `first`; a level's
/// folders are split among threads. `visit` returns what it found and the
/// folders of the next level. Returns every result, level by level, or the
/// first error; `panicked` makes the error for a thread that panicked.
pub(crate) fn by_levels<T, R, E>(
    first: Vec<T>,
    visit: impl Fn(&[T]) -> Result<(R, Vec<T>), E> + Sync,
    panicked: impl Fn() -> E,
) -> Result<Vec<R>, E>
where
    T: Send + Sync,
    R: Send,
    E: Send,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() * 2);
    let visit = &visit;
    let mut found = Vec::new();
    let mut level = first;
    while !level.is_empty() {
        let per_thread = level.len().div_ceil(threads);
        let results: Vec<Result<(R, Vec<T>), E>> = std::thread::scope(|scope| {
            let workers: Vec<_> = level
                .chunks(per_thread)
                .map(|dirs| scope.spawn(move || visit(dirs)))
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap_or_else(|_| Err(panicked())))
                .collect()
        });
        level = Vec::new();
        for result in results {
            let (result, next) = result?;
            found.push(result);
            level.extend(next);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_is_visited_once_and_errors_stop_the_walk() {
        // A binary tree of numbers 1..64: node n has children 2n and 2n+1.
        let children = |nodes: &[u32]| -> Result<(Vec<u32>, Vec<u32>), String> {
            let next = nodes
                .iter()
                .flat_map(|n| [2 * n, 2 * n + 1])
                .filter(|n| *n < 64)
                .collect();
            Ok((nodes.to_vec(), next))
        };
        let mut seen: Vec<u32> = by_levels(vec![1], children, || "panicked".to_string())
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..64).collect::<Vec<_>>());

        let failing = |nodes: &[u32]| -> Result<((), Vec<u32>), String> {
            if nodes.iter().any(|n| *n >= 8) {
                return Err("too deep".into());
            }
            Ok(((), nodes.iter().flat_map(|n| [2 * n, 2 * n + 1]).collect()))
        };
        assert_eq!(
            by_levels(vec![1], failing, || "panicked".to_string()),
            Err("too deep".to_string())
        );
    }
}
