//! Which store paths go into which layer.
//!
//! A layer is a sorted list of store paths. Store paths are input-addressed,
//! so a layer whose list is unchanged holds the same bytes as before. Order
//! matters where layers are chained (engines without MergeOp): a changed layer
//! invalidates every layer above it. So paths that rarely change (those with
//! few dependencies of their own) come first and the flake's own outputs last.

use std::collections::{BTreeMap, BTreeSet};

use super::report::StorePath;

/// Paths smaller than this (NAR bytes) share one layer.
pub const SMALL_PATH: u64 = 256 * 1024;

/// Splits `closure` into at most `budget` layers (at least one).
pub fn plan_layers(closure: &[StorePath], outputs: &[String], budget: usize) -> Vec<Vec<String>> {
    let budget = budget.max(1);
    let all: Vec<String> = closure.iter().map(|p| p.path.clone()).collect();
    if budget == 1 || all.len() <= 1 {
        return vec![all].into_iter().filter(|l| !l.is_empty()).collect();
    }
    let outputs: BTreeSet<&str> = outputs.iter().map(String::as_str).collect();
    let own: Vec<String> = all
        .iter()
        .filter(|p| outputs.contains(p.as_str()))
        .cloned()
        .collect();
    let mut deps: Vec<&StorePath> = closure
        .iter()
        .filter(|p| !outputs.contains(p.path.as_str()))
        .collect();

    let counts = dependency_counts(closure);
    deps.sort_by(|a, b| {
        let key = |p: &StorePath| (counts[p.path.as_str()], name_of(&p.path).to_owned());
        key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
    });

    // Tiny paths gain nothing from a layer of their own (a container start
    // to copy them, tar overhead, one more blob): they share one layer,
    // placed just below the flake's own outputs.
    let own_layer = usize::from(!own.is_empty());
    // ...unless the budget has no room for a layer of their own next to the
    // outputs and the other dependencies: then they are grouped with those.
    let small_fits =
        budget >= own_layer + 1 + usize::from(deps.iter().any(|p| p.nar_size >= SMALL_PATH));
    let small: Vec<String> = if small_fits {
        let mut v: Vec<String> = deps
            .iter()
            .filter(|p| p.nar_size < SMALL_PATH)
            .map(|p| p.path.clone())
            .collect();
        v.sort();
        deps.retain(|p| p.nar_size >= SMALL_PATH);
        v
    } else {
        Vec::new()
    };

    let room = budget
        .saturating_sub(own_layer + usize::from(!small.is_empty()))
        .max(1);
    let mut layers: Vec<Vec<String>> = Vec::new();
    if deps.len() > room {
        // Too many paths: the largest keep a layer each, the rest share one.
        let mut by_size: Vec<&StorePath> = deps.clone();
        by_size.sort_by(|a, b| {
            b.nar_size
                .cmp(&a.nar_size)
                .then_with(|| a.path.cmp(&b.path))
        });
        let solo: BTreeSet<&str> = by_size
            .iter()
            .take(room.saturating_sub(1))
            .map(|p| p.path.as_str())
            .collect();
        let mut grouped: Vec<String> = deps
            .iter()
            .filter(|p| !solo.contains(p.path.as_str()))
            .map(|p| p.path.clone())
            .collect();
        grouped.sort();
        layers.push(grouped);
        deps.retain(|p| solo.contains(p.path.as_str()));
    }
    layers.extend(deps.iter().map(|p| vec![p.path.clone()]));
    layers.push(small);
    if !own.is_empty() {
        layers.push(own);
    }
    layers.retain(|l| !l.is_empty());
    layers
}

/// A layer as people read it: its packages' names, at most three.
pub fn describe_layer(paths: &[String]) -> String {
    let names: Vec<&str> = paths.iter().map(|p| name_of(p)).collect();
    if names.len() > 3 {
        format!("{} +{} more", names[..3].join(" "), names.len() - 3)
    } else {
        names.join(" ")
    }
}

/// The package name of a store path, without its hash: stable across
/// versions of the same package, unlike the full path.
fn name_of(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split_once('-').map_or(base, |(_, name)| name)
}

/// For each path, how many other paths it depends on, directly or not.
fn dependency_counts(closure: &[StorePath]) -> BTreeMap<&str, usize> {
    let refs: BTreeMap<&str, Vec<&str>> = closure
        .iter()
        .map(|p| {
            let r = p
                .references
                .iter()
                .map(String::as_str)
                .filter(|r| *r != p.path)
                .collect();
            (p.path.as_str(), r)
        })
        .collect();
    let mut out = BTreeMap::new();
    for p in closure {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = refs[p.path.as_str()].clone();
        while let Some(r) = stack.pop() {
            if seen.insert(r) {
                stack.extend(refs.get(r).into_iter().flatten().copied());
            }
        }
        out.insert(p.path.as_str(), seen.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;

    fn sp(path: &str, size: u64, refs: &[&str]) -> StorePath {
        StorePath {
            path: path.to_owned(),
            nar_size: size,
            nar_hash: String::new(),
            references: refs.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn closure() -> Vec<StorePath> {
        vec![
            sp("/nix/store/aaa-busybox", 1000 * K, &[]),
            sp(
                "/nix/store/bbb-hello",
                10 * K,
                &["/nix/store/aaa-busybox", "/nix/store/ccc-greeting"],
            ),
            sp("/nix/store/ccc-greeting", 500 * K, &["/nix/store/ddd-lib"]),
            sp("/nix/store/ddd-lib", 5000 * K, &[]),
        ]
    }

    #[test]
    fn one_layer_when_budget_is_one() {
        let l = plan_layers(&closure(), &["/nix/store/bbb-hello".into()], 1);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].len(), 4);
    }

    #[test]
    fn one_path_per_layer_and_outputs_last() {
        let l = plan_layers(&closure(), &["/nix/store/bbb-hello".into()], 60);
        assert_eq!(
            l,
            vec![
                vec!["/nix/store/aaa-busybox".to_owned()],
                vec!["/nix/store/ddd-lib".to_owned()],
                vec!["/nix/store/ccc-greeting".to_owned()],
                vec!["/nix/store/bbb-hello".to_owned()],
            ]
        );
    }

    #[test]
    fn paths_share_a_layer_beyond_the_budget() {
        let l = plan_layers(&closure(), &["/nix/store/bbb-hello".into()], 3);
        assert_eq!(l.len(), 3);
        // lib is the largest and keeps its own layer; busybox and greeting share one.
        assert_eq!(
            l[0],
            vec![
                "/nix/store/aaa-busybox".to_owned(),
                "/nix/store/ccc-greeting".to_owned()
            ]
        );
        assert_eq!(l[1], vec!["/nix/store/ddd-lib".to_owned()]);
        assert_eq!(l[2], vec!["/nix/store/bbb-hello".to_owned()]);
    }

    #[test]
    fn budget_holds_with_tiny_paths() {
        let mut c = closure();
        c.push(sp("/nix/store/eee-tiny", K, &[]));
        for budget in 1..6 {
            let l = plan_layers(&c, &["/nix/store/bbb-hello".into()], budget);
            assert!(l.len() <= budget, "budget {budget}: {l:?}");
            assert_eq!(
                l.iter().map(Vec::len).sum::<usize>(),
                5,
                "budget {budget}: every path once"
            );
        }
    }

    #[test]
    fn tiny_paths_share_one_layer_below_the_outputs() {
        let mut c = closure();
        for i in 0..300 {
            c.push(sp(&format!("/nix/store/{i:03}-module"), K, &[]));
        }
        let l = plan_layers(&c, &["/nix/store/bbb-hello".into()], 60);
        assert_eq!(l.len(), 5, "busybox, greeting, lib, the tiny ones, hello");
        assert_eq!(l[3].len(), 300);
        assert_eq!(l[4], vec!["/nix/store/bbb-hello".to_owned()]);
    }
}
