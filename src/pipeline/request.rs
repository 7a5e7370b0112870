//! Subrequests (`--call outline|targets|check`, `describe`): an empty result
//! whose metadata is the answer.

use super::{Failure, Session};
use crate::diagnostic::Diagnostic;
use crate::engine::{Engine, Refs, Returned};
use crate::spec;
use crate::subrequest::{self, Answer};

impl<E: Engine> Session<'_, E> {
    pub(super) async fn subrequest(&mut self, request: &str) -> Result<Returned, Failure> {
        let answer = if request == subrequest::DESCRIBE {
            subrequest::describe()
        } else {
            if ![subrequest::OUTLINE, subrequest::TARGETS, subrequest::LINT].contains(&request) {
                return Err(Failure::UnknownRequest(request.to_owned()));
            }
            self.imports = self.opts.cache_imports()?;
            self.read_spec().await?;
            let (name, text) = (self.spec.name.as_str(), self.spec.text.as_str());
            // The build args of the first platform, the automatic ones too.
            let platform = match self.target_platforms()?.into_iter().next() {
                Some(p) => p,
                None => self.build_platform()?,
            };
            let args = self.args_for(&platform)?;
            let target_name = self.opts.target();
            match request {
                subrequest::OUTLINE => {
                    let spec = spec::parse_lenient(name, text)?;
                    spec.target(target_name.as_deref())?;
                    subrequest::outline(&spec, target_name.as_deref(), &args, text)
                }
                subrequest::TARGETS => subrequest::targets(&spec::parse_lenient(name, text)?, text),
                _ => self.lint(&platform, &args).await,
            }
        };
        Ok(Returned {
            refs: Refs::None,
            metadata: answer.metadata(),
            attestations: Default::default(),
        })
    }

    /// The spec's warnings for the target asked for; when it is otherwise
    /// buildable, the nix step runs (usually a cache hit) so the entrypoint
    /// can be checked too.
    async fn lint(
        &self,
        platform: &crate::plan::Platform,
        args: &std::collections::BTreeMap<String, String>,
    ) -> Answer {
        let name = self.spec.name.clone();
        let text = self.spec.text.clone();
        let target_name = self.opts.target();
        let failed = |e: &dyn std::fmt::Display| {
            subrequest::lint_answer(&[], &name, &text, Some(e.to_string()))
        };
        let spec = match spec::parse_lenient(&name, &text) {
            Ok(s) => s,
            Err(e) => return failed(&Diagnostic::from(&e).render(&name, &text)),
        };
        let target = match spec.target(target_name.as_deref()) {
            Ok(t) => t.clone(),
            Err(e) => return failed(&Diagnostic::from(&e).render(&name, &text)),
        };
        let mut warnings = subrequest::lint(&target, args, None);
        if warnings.is_empty() {
            // Every arg is defined: build what a build would, with the values.
            let built = async {
                let spec = spec::parse_for_target(&name, &text, args, target_name.as_deref())?;
                self.check_caps()?;
                let mut planned = self
                    .plan(&spec, platform, self.dockerignore(), args)
                    .await?;
                let report = self.nix_step(&mut planned).await?;
                Ok::<_, Failure>((planned.plan, report))
            };
            match built.await {
                Ok((plan, b)) => {
                    warnings = subrequest::lint(&target, args, Some(&b.programs));
                    if let Err(e) = crate::plan::arch_check(&plan, &b) {
                        warnings.push(subrequest::Warning {
                            rule: "WrongArchitecture",
                            description: "the program the image runs first is not one for its platform",
                            detail: e.to_string().trim_start_matches("`flake`: ").to_owned(),
                            span: plan.nix.flake.span,
                        });
                    }
                }
                Err(e) => return failed(&e.to_return(&name, &text).message),
            }
        }
        subrequest::lint_answer(&warnings, &name, &text, None)
    }
}
