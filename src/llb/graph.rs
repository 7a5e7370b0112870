//! A small LLB graph builder: add ops, get handles to their outputs, marshal
//! the whole into a `Definition` whose bytes and digests are deterministic.

use std::collections::BTreeMap;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::plan::hex;
use crate::proto::llb as pb;
use crate::span::Span;

/// One output of an op: what another op takes as an input.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Output {
    pub digest: String,
    pub index: i64,
}

/// A 1-based line range in the spec, attached to the ops it caused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lines {
    pub start: usize,
    pub end: usize,
}

impl Lines {
    /// The lines `span` covers in `text`.
    pub fn of(span: Span, text: &str) -> Self {
        let (start, end) = span.lines(text);
        Self {
            start: start.line,
            end: end.line,
        }
    }
}

/// BuildKit's form: 1-based lines, column 0.
impl From<Lines> for pb::Range {
    fn from(l: Lines) -> Self {
        let pos = |line: usize| pb::Position {
            line: line as i32,
            character: 0,
        };
        Self {
            start: Some(pos(l.start)),
            end: Some(pos(l.end)),
        }
    }
}

#[derive(Default)]
pub struct Graph {
    /// Marshalled ops in insertion order (dependencies first), each once.
    ops: Vec<(String, Vec<u8>)>,
    metadata: BTreeMap<String, pb::OpMetadata>,
    locations: BTreeMap<String, Vec<Lines>>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an op and returns its digest; the same op added twice is one vertex.
    pub fn add(&mut self, op: &pb::Op, name: &str, lines: Option<Lines>) -> String {
        let bytes = op.encode_to_vec();
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        if !self.ops.iter().any(|(d, _)| *d == digest) {
            self.ops.push((digest.clone(), bytes));
        }
        if !name.is_empty() {
            let meta = self.metadata.entry(digest.clone()).or_default();
            meta.description
                .insert("llb.customname".into(), name.to_owned());
        }
        if let Some(l) = lines {
            let entry = self.locations.entry(digest.clone()).or_default();
            if !entry.contains(&l) {
                entry.push(l);
            }
        }
        digest
    }

    /// Adds the ops of a client's input as they are, with their metadata,
    /// but not its terminal op (the last); returns the input's result.
    pub fn splice(&mut self, input: &Input) -> Output {
        let def = &input.definition;
        let ops = def.def.split_last().map_or(&[][..], |(_, ops)| ops);
        for bytes in ops {
            let digest = format!("sha256:{}", hex(&Sha256::digest(bytes)));
            if !self.ops.iter().any(|(d, _)| *d == digest) {
                if let Some(meta) = def.metadata.get(&digest) {
                    self.metadata.insert(digest.clone(), meta.clone());
                }
                self.ops.push((digest, bytes.clone()));
            }
        }
        input.result.clone()
    }

    /// Marks an op so BuildKit ignores its cache (`--no-cache`).
    pub fn ignore_cache(&mut self, digest: &str) {
        self.metadata
            .entry(digest.to_owned())
            .or_default()
            .ignore_cache = true;
    }

    /// The Definition whose result is `result` (`None` = an empty result).
    /// `source` is the spec (file name and text) the line ranges point into.
    pub fn finish(
        mut self,
        result: Option<&Output>,
        source: Option<(&str, &str)>,
    ) -> pb::Definition {
        let Some(result) = result else {
            return pb::Definition::default();
        };
        let terminal = pb::Op {
            inputs: vec![pb::Input {
                digest: result.digest.clone(),
                index: result.index,
            }],
            ..Default::default()
        };
        self.add(&terminal, "", None);
        let source = source
            .filter(|_| !self.locations.is_empty())
            .map(|(filename, text)| {
                let locations = self
                    .locations
                    .iter()
                    .map(|(digest, lines)| {
                        let ranges = lines.iter().map(|l| pb::Range::from(*l)).collect();
                        let loc = pb::Location {
                            source_index: 0,
                            ranges,
                        };
                        (
                            digest.clone(),
                            pb::Locations {
                                locations: vec![loc],
                            },
                        )
                    })
                    .collect();
                pb::Source {
                    locations,
                    infos: vec![pb::SourceInfo {
                        filename: filename.to_owned(),
                        data: text.as_bytes().to_vec(),
                        definition: None,
                        language: String::new(),
                    }],
                }
            });
        pb::Definition {
            def: self.ops.into_iter().map(|(_, b)| b).collect(),
            metadata: self.metadata,
            source,
        }
    }
}

/// Each op's digest, computed from the exact bytes in `def`.
pub fn digests(def: &pb::Definition) -> Vec<String> {
    def.def
        .iter()
        .map(|b| format!("sha256:{}", hex(&Sha256::digest(b))))
        .collect()
}

/// A definition the client built (an input of the build: bake's
/// `target:`), as the Inputs call gave it, and its result.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub definition: pb::Definition,
    pub result: Output,
}

impl Input {
    /// `None` for an empty definition (an empty result) or one that is not
    /// LLB: the result is what its terminal op (the last) points to.
    pub fn new(definition: pb::Definition) -> Option<Self> {
        let terminal = pb::Op::decode(definition.def.last()?.as_slice()).ok()?;
        let input = terminal.inputs.first()?;
        let result = Output {
            digest: input.digest.clone(),
            index: input.index,
        };
        Some(Self { definition, result })
    }
}

/// The progress name of the op a definition's result comes from.
pub fn result_name(def: &pb::Definition) -> String {
    let Some(terminal) = def
        .def
        .last()
        .and_then(|b| pb::Op::decode(b.as_slice()).ok())
    else {
        return String::new();
    };
    terminal
        .inputs
        .first()
        .and_then(|i| name_of(def, &i.digest))
        .unwrap_or_default()
}

/// The digest of the first op whose progress name starts with `prefix`.
pub fn op_named(def: &pb::Definition, prefix: &str) -> Option<String> {
    digests(def)
        .into_iter()
        .find(|d| name_of(def, d).is_some_and(|n| n.starts_with(prefix)))
}

fn name_of(def: &pb::Definition, digest: &str) -> Option<String> {
    def.metadata
        .get(digest)
        .and_then(|m| m.description.get("llb.customname"))
        .cloned()
}
