//! A fresh store's build as steps BuildKit caches and exports.
//!
//! The store lives in a cache mount, which a build cache never carries: on
//! a fresh builder (CI) the single nix step rebuilds the whole closure. So
//! where the store never built the target, the first nix step only
//! evaluates (`Mode::Auto`): it reports the derivation graph (`GRAPH_FILE`)
//! and the names of the context's files (`NAMES_FILE`). From those the
//! derivations are cut into group steps, each keyed by its derivation
//! paths alone and holding what its derivations' outputs add to the groups
//! below it:
//!
//! - the *dependencies*: every derivation that no file of the context
//!   reaches (toolchains, libraries from flake inputs), in one step;
//! - each derivation a context file reaches (its `inputSrcs` holds a store
//!   path named like a file of the context, or `source`, the name of a
//!   copied flake), or one that depends on such a derivation, in a step of
//!   its own, so a change rebuilds only it and what depends on it;
//! - the installable itself, left to the final step (`Mode::Final`), which
//!   builds it on top of every group and reports as the single step does.
//!
//! Which derivation goes where only decides what a change rebuilds: every
//! step builds with nix, so the image is the same whatever the cut.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::NixStep;
use super::script::{Script, group_argv};

/// The first nix step's evaluation, under its output (`OUT_DIR`): the
/// installable's derivation and the derivation graph. Its bytes follow from
/// the derivation paths alone, so a step that mounts it is rerun only when
/// they change.
pub const GRAPH_FILE: &str = "eval/graph.json";
/// The package's meta and the flake's metadata, which change with any file.
pub const FACTS_FILE: &str = "eval/facts.json";
/// The names of the context's files, one per line, sorted.
pub const NAMES_FILE: &str = "eval/names.txt";

/// What the evaluation reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Eval {
    /// The installable's derivation and the outputs nix builds of it.
    pub top: (String, Vec<String>),
    /// Every derivation of the closure: its input derivations and sources.
    pub derivations: BTreeMap<String, Derivation>,
    /// `nix eval` of the package's meta and `nix flake metadata`, as the
    /// single step reports them.
    meta: Value,
    flake: Value,
    errors: Value,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derivation {
    pub input_drvs: Vec<String>,
    pub input_srcs: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("the nix step's evaluation is not JSON we can read: {0}")]
    Json(String),
    #[error("nix reported {0} derivations for the installable, not one")]
    Top(usize),
    #[error("the nix step's report is not a JSON object")]
    Report,
}

/// The groups and the final step, in the order they build.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NixGraph {
    pub groups: Vec<GroupStep>,
    pub final_script: Script,
    /// What the final step's report is spliced with.
    #[serde(skip)]
    pub eval: Eval,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupStep {
    /// For progress: `dependencies (N derivations)` or the derivation's name.
    pub name: String,
    /// Sorted: with the builder, they are the step's cache key.
    pub drvs: Vec<String>,
    /// The groups (by index, ascending) this one builds on.
    pub below: Vec<usize>,
    pub argv: Vec<String>,
}

#[derive(Deserialize)]
struct RawGraph {
    build: Vec<RawBuilt>,
    derivations: Value,
}

#[derive(Deserialize)]
struct RawFacts {
    #[serde(default)]
    meta: Value,
    #[serde(default)]
    flake: Value,
    #[serde(default)]
    errors: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBuilt {
    drv_path: String,
    outputs: BTreeMap<String, Value>,
}

const STORE: &str = "/nix/store/";

/// A store path from `nix derivation show`: full (Nix before 2.32) or a
/// base name (newer formats).
fn store_path(p: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("{STORE}{p}")
    }
}

impl Eval {
    /// Reads `GRAPH_FILE` and `FACTS_FILE`.
    pub fn parse(graph: &[u8], facts: &[u8]) -> Result<Self, EvalError> {
        let json = |e: serde_json::Error| EvalError::Json(e.to_string());
        let raw: RawGraph = serde_json::from_slice(graph).map_err(json)?;
        let facts: RawFacts = serde_json::from_slice(facts).map_err(json)?;
        let [built] = <[RawBuilt; 1]>::try_from(raw.build).map_err(|b| EvalError::Top(b.len()))?;
        // Newer Nix wraps the map: `{"derivations": {…}, "version": N}`.
        let map = match raw.derivations.get("derivations") {
            Some(inner) => inner.clone(),
            None => raw.derivations,
        };
        let Value::Object(map) = map else {
            return Err(EvalError::Json("derivations: not an object".into()));
        };
        let mut derivations = BTreeMap::new();
        for (path, d) in map {
            // `inputDrvs`/`inputSrcs`, or `inputs: {drvs, srcs}` (newer).
            let inputs = d.get("inputs");
            let drvs = d
                .get("inputDrvs")
                .or_else(|| inputs.and_then(|i| i.get("drvs")));
            let srcs = d
                .get("inputSrcs")
                .or_else(|| inputs.and_then(|i| i.get("srcs")));
            let input_drvs = match drvs {
                Some(Value::Object(m)) => m.keys().map(|k| store_path(k)).collect(),
                _ => Vec::new(),
            };
            let input_srcs = match srcs {
                Some(Value::Array(a)) => {
                    a.iter().filter_map(Value::as_str).map(store_path).collect()
                }
                _ => Vec::new(),
            };
            derivations.insert(
                store_path(&path),
                Derivation {
                    input_drvs,
                    input_srcs,
                },
            );
        }
        Ok(Self {
            top: (built.drv_path, built.outputs.into_keys().collect()),
            derivations,
            meta: facts.meta,
            flake: facts.flake,
            errors: facts.errors,
        })
    }

    /// The final step's report with the evaluation's facts, which that step
    /// (building a derivation, not the flake) cannot know.
    pub fn splice(&self, report: &[u8]) -> Result<Vec<u8>, EvalError> {
        let mut r: Value = serde_json::from_slice(report).map_err(|_| EvalError::Report)?;
        let o = r.as_object_mut().ok_or(EvalError::Report)?;
        o.insert("meta".into(), self.meta.clone());
        o.insert("flake".into(), self.flake.clone());
        o.insert("errors".into(), self.errors.clone());
        serde_json::to_vec(&r).map_err(|e| EvalError::Json(e.to_string()))
    }
}

/// `hash-name` of a store path, without `.drv`: its name.
fn name_of(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    base.split_once('-').map_or(base, |(_, n)| n)
}

/// The derivations in build order: each after its inputs.
fn build_order(drvs: &BTreeMap<String, Derivation>) -> Vec<&str> {
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for start in drvs.keys() {
        if !seen.insert(start.as_str()) {
            continue;
        }
        // An explicit stack: nixpkgs' bootstrap chains are deep.
        let mut stack = vec![(start.as_str(), 0usize)];
        while let Some((d, i)) = stack.pop() {
            let inputs = drvs.get(d).map_or(&[][..], |x| &x.input_drvs[..]);
            if let Some(next) = inputs.get(i) {
                stack.push((d, i + 1));
                if drvs.contains_key(next) && seen.insert(next.as_str()) {
                    stack.push((next.as_str(), 0));
                }
            } else {
                order.push(d);
            }
        }
    }
    order
}

/// Why a derivation has a step of its own, for its progress name: the
/// context files it reads, else the derivation it depends on that does.
fn why(d: &Derivation, names: &BTreeSet<&str>, volatile: &BTreeSet<&str>) -> String {
    let read: Vec<&str> = d
        .input_srcs
        .iter()
        .map(|s| name_of(s))
        .filter(|n| names.contains(n))
        .collect();
    if !read.is_empty() {
        return format!("reads {}", read.join(", "));
    }
    let on: Vec<&str> = d
        .input_drvs
        .iter()
        .filter(|i| volatile.contains(i.as_str()))
        .map(|i| name_of(i))
        .collect();
    format!("on {}", on.join(", "))
}

/// Cuts the evaluated graph into group steps and the final step.
pub fn nix_graph(step: &NixStep, eval: Eval, names: &str) -> NixGraph {
    let names: BTreeSet<&str> = names
        .lines()
        .chain(["source"])
        .filter(|n| !n.is_empty())
        .collect();
    let (top, outputs) = &eval.top;
    let order = build_order(&eval.derivations);
    // Reached by the context: through a source of its own or an input.
    let mut volatile: BTreeSet<&str> = BTreeSet::new();
    for &d in &order {
        let x = &eval.derivations[d];
        let own = x.input_srcs.iter().any(|s| names.contains(name_of(s)));
        if own || x.input_drvs.iter().any(|i| volatile.contains(i.as_str())) {
            volatile.insert(d);
        }
    }
    let system = &step.script.system;
    let mut groups = Vec::new();
    let mut stable: Vec<String> = order
        .iter()
        .filter(|d| **d != top && !volatile.contains(**d))
        .map(|d| (*d).to_owned())
        .collect();
    stable.sort();
    if !stable.is_empty() {
        groups.push(GroupStep {
            name: format!("dependencies ({} derivations)", stable.len()),
            argv: group_argv(system, &stable),
            drvs: stable,
            below: Vec::new(),
        });
    }
    let deps: Vec<usize> = (0..groups.len()).collect();
    // Each volatile derivation's group, and the groups it builds on.
    let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
    for &d in order
        .iter()
        .filter(|d| **d != top && volatile.contains(**d))
    {
        let mut below: BTreeSet<usize> = deps.iter().copied().collect();
        for i in &eval.derivations[d].input_drvs {
            if let Some(&g) = group_of.get(i.as_str()) {
                below.insert(g);
                below.extend(groups[g].below.iter().copied());
            }
        }
        group_of.insert(d, groups.len());
        let drvs = vec![d.to_owned()];
        groups.push(GroupStep {
            name: format!(
                "{} ({})",
                name_of(d),
                why(&eval.derivations[d], &names, &volatile)
            ),
            argv: group_argv(system, &drvs),
            drvs,
            below: below.into_iter().collect(),
        });
    }
    let installable = format!("{top}^{}", outputs.join(","));
    NixGraph {
        groups,
        final_script: step.script.final_step(installable),
        eval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench workload's shape: a toolchain and busybox no file
    /// reaches, a library with a version file, one on it, the app on top.
    const EVAL: &str = r#"{"build":[{"drvPath":"/nix/store/a-app.drv","outputs":{"out":"/nix/store/o-app"}}],
      "derivations":{
        "/nix/store/a-app.drv":{"inputDrvs":{"/nix/store/t-toolchain.drv":{},"/nix/store/b-busybox.drv":{},"/nix/store/l-liba.drv":{},"/nix/store/m-libb.drv":{}},"inputSrcs":["/nix/store/s-app-message"]},
        "/nix/store/t-toolchain.drv":{"inputDrvs":{},"inputSrcs":[]},
        "/nix/store/b-busybox.drv":{"inputDrvs":{},"inputSrcs":[]},
        "/nix/store/l-liba.drv":{"inputDrvs":{"/nix/store/b-busybox.drv":{}},"inputSrcs":["/nix/store/v-liba-version"]},
        "/nix/store/m-libb.drv":{"inputDrvs":{"/nix/store/l-liba.drv":{}},"inputSrcs":[]}
      }}"#;
    const FACTS: &[u8] = br#"{"meta":{"mainProgram":"app","license":null},"flake":null}"#;

    fn step() -> NixStep {
        let mut s = crate::plan::tests::nix_step_for_tests();
        s.script.system = "x86_64-linux".into();
        s
    }

    #[test]
    fn stable_derivations_share_a_step_and_each_changing_one_has_its_own() {
        let eval = Eval::parse(EVAL.as_bytes(), FACTS).unwrap();
        let g = nix_graph(
            &step(),
            eval,
            "app-message\nliba-version\nlibb-version\nsrc\n",
        );
        let shown: Vec<(&str, &[String], &[usize])> = g
            .groups
            .iter()
            .map(|s| (s.name.as_str(), &s.drvs[..], &s.below[..]))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "dependencies (2 derivations)",
                    &[
                        "/nix/store/b-busybox.drv".to_owned(),
                        "/nix/store/t-toolchain.drv".into()
                    ][..],
                    &[][..]
                ),
                (
                    "liba (reads liba-version)",
                    &["/nix/store/l-liba.drv".to_owned()][..],
                    &[0][..]
                ),
                // libb builds on liba's group, and so on the dependencies.
                (
                    "libb (on liba)",
                    &["/nix/store/m-libb.drv".to_owned()][..],
                    &[0, 1][..]
                ),
            ]
        );
        assert_eq!(g.final_script.installable, "/nix/store/a-app.drv^out");
        assert_eq!(g.final_script.mode, super::super::Mode::Final);
        assert!(g.final_script.overrides.is_empty());
        assert_eq!(
            g.groups[1].argv[4..],
            ["x86_64-linux", "/nix/store/l-liba.drv"]
        );
    }

    #[test]
    fn a_copied_flake_is_a_source_of_the_context() {
        let eval =
            Eval::parse(EVAL.replace("s-app-message", "q-source").as_bytes(), FACTS).unwrap();
        // No names at all: only `source` marks the context.
        let g = nix_graph(&step(), eval, "");
        assert_eq!(g.groups.len(), 1);
        assert_eq!(g.groups[0].drvs.len(), 4, "liba and libb are now stable");
    }

    #[test]
    fn newer_nix_formats_and_bad_input() {
        let newer = r#"{"build":[{"drvPath":"/nix/store/a-app.drv","outputs":{"out":"/nix/store/o","man":"/nix/store/p"}}],
          "derivations":{"version":4,"derivations":{"a-app.drv":{"inputs":{"drvs":{"b-lib.drv":{}},"srcs":["s-src"]}},"b-lib.drv":{"inputs":{"drvs":{},"srcs":[]}}}}}"#;
        let eval = Eval::parse(newer.as_bytes(), b"{}").unwrap();
        assert_eq!(
            eval.derivations["/nix/store/a-app.drv"].input_drvs,
            ["/nix/store/b-lib.drv"]
        );
        let g = nix_graph(&step(), eval, "src");
        assert_eq!(g.final_script.installable, "/nix/store/a-app.drv^man,out");
        assert_eq!(g.groups.len(), 1);
        assert_eq!(
            Eval::parse(br#"{"build":[],"derivations":{}}"#, b"{}"),
            Err(EvalError::Top(0))
        );
        assert!(matches!(
            Eval::parse(b"null", b"{}"),
            Err(EvalError::Json(_))
        ));
    }

    #[test]
    fn the_report_gets_the_evaluation_facts() {
        let eval = Eval::parse(EVAL.as_bytes(), FACTS).unwrap();
        let r = eval
            .splice(br#"{"version":2,"outputs":["/nix/store/o-app"],"meta":null,"flake":null}"#)
            .unwrap();
        let v: Value = serde_json::from_slice(&r).unwrap();
        assert_eq!(v["meta"]["mainProgram"], "app");
        assert_eq!(v["outputs"][0], "/nix/store/o-app");
        assert_eq!(eval.splice(b"[1]"), Err(EvalError::Report));
    }
}
