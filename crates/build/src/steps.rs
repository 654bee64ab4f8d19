//! One step per instruction: metadata instructions edit the config, `RUN` runs a container.

use std::collections::BTreeMap;
use std::io::Write;

use berth_image::model::HealthConfig;

use crate::ast::{CommandLine, Healthcheck, Instruction, Located, Run};
use crate::builder::{fmt_labels, short, BuildError, Builder, Event, State};

impl Builder<'_> {
    pub(crate) fn step(
        &mut self,
        st: &mut State,
        ins: &Located<Instruction>,
    ) -> Result<(), BuildError> {
        let x = self.expand(st, ins)?;
        match x {
            Instruction::Run(run) => self.run_step(st, &run),
            Instruction::Copy(c) => self.copy_step(st, &c.into()),
            Instruction::Add(a) => self.copy_step(st, &a.into()),
            Instruction::Arg(a) => {
                let mut text = Vec::new();
                for d in &a.args {
                    self.args.declare(&d.name, d.default.clone());
                    text.push(match &d.default {
                        Some(v) => format!("{}={v}", d.name),
                        None => d.name.clone(),
                    });
                }
                self.meta_commit(st, &format!("ARG {}", text.join(" ")))
            }
            Instruction::Workdir(w) => {
                let text = self.apply_meta(st, Instruction::Workdir(w))?;
                self.workdir_step(st, &text)
            }
            other => {
                let text = self.apply_meta(st, other)?;
                self.meta_commit(st, &text)
            }
        }
    }

    /// Applies a metadata instruction to the config; returns its `#(nop)` history text.
    fn apply_meta(&mut self, st: &mut State, ins: Instruction) -> Result<String, BuildError> {
        let shell = st.shell();
        let cc = st.cc();
        Ok(match ins {
            Instruction::Env(kvs) => {
                let env = cc.env.get_or_insert_with(Vec::new);
                for kv in &kvs {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != kv.key);
                    env.push(format!("{}={}", kv.key, kv.value));
                }
                let pairs: Vec<String> = kvs
                    .iter()
                    .map(|k| format!("{}={}", k.key, k.value))
                    .collect();
                format!("ENV {}", pairs.join(" "))
            }
            Instruction::Label(kvs) => {
                let labels = cc.labels.get_or_insert_with(Default::default);
                let mut added = BTreeMap::new();
                for kv in kvs {
                    labels.insert(kv.key.clone(), kv.value.clone());
                    added.insert(kv.key, kv.value);
                }
                format!("LABEL {}", fmt_labels(&added))
            }
            Instruction::Expose(ports) => {
                let map = cc.exposed_ports.get_or_insert_with(Default::default);
                // The history shows the ports as written (dockerd's text), the config with
                // their protocol.
                let text = format!("EXPOSE {}", ports.join(" "));
                for p in ports {
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    map.insert(p, serde_json::json!({}));
                }
                text
            }
            Instruction::User(u) => {
                cc.user = Some(u.clone());
                format!("USER {u}")
            }
            Instruction::Workdir(w) => {
                let base = cc
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .unwrap_or("/".into());
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", base.trim_end_matches('/'))
                };
                let clean = clean_abs(&joined);
                cc.working_dir = Some(clean.clone());
                format!("WORKDIR {clean}")
            }
            Instruction::Volume(v) => {
                let map = cc.volumes.get_or_insert_with(Default::default);
                for p in &v {
                    map.insert(p.clone(), serde_json::json!({}));
                }
                format!("VOLUME [{}]", v.join(" "))
            }
            Instruction::Cmd(c) => {
                let v = command(&c, &shell);
                cc.cmd = Some(v.clone());
                st.cmd_set = true;
                format!("CMD {}", json_list(&v))
            }
            Instruction::Entrypoint(c) => {
                let v = command(&c, &shell);
                cc.entrypoint = Some(v.clone());
                if !st.cmd_set {
                    st.cc().cmd = None;
                }
                format!("ENTRYPOINT {}", json_list(&v))
            }
            Instruction::Shell(s) => {
                cc.shell = Some(s.clone());
                format!("SHELL {}", json_list(&s))
            }
            Instruction::StopSignal(s) => {
                cc.stop_signal = Some(s.clone());
                format!("STOPSIGNAL {s}")
            }
            Instruction::Onbuild(o) => {
                cc.on_build
                    .get_or_insert_with(Vec::new)
                    .push(o.expression.clone());
                format!("ONBUILD {}", o.expression)
            }
            Instruction::Maintainer(m) => {
                st.config.author = Some(m.clone());
                format!("MAINTAINER {m}")
            }
            Instruction::Healthcheck(h) => {
                let hc = match h {
                    Healthcheck::None => HealthConfig {
                        test: Some(vec!["NONE".into()]),
                        ..Default::default()
                    },
                    Healthcheck::Check(c) => {
                        let ns = |d: Option<std::time::Duration>| {
                            d.map(|d| d.as_nanos() as i64).filter(|n| *n != 0)
                        };
                        HealthConfig {
                            test: Some(c.test()),
                            interval: ns(c.interval),
                            timeout: ns(c.timeout),
                            start_period: ns(c.start_period),
                            start_interval: ns(c.start_interval),
                            retries: c.retries.map(i64::from).filter(|r| *r != 0),
                        }
                    }
                };
                let text = crate::gofmt::healthcheck_text(&hc);
                cc.healthcheck = Some(hc);
                text
            }
            other => {
                return Err(BuildError::Invalid(format!(
                    "{} is not supported here",
                    other.keyword()
                )))
            }
        })
    }

    fn run_step(&mut self, st: &mut State, run: &Run) -> Result<(), BuildError> {
        let shell = st.shell();
        let cmd = match &run.command {
            CommandLine::Shell(s) => {
                let mut v = shell.clone();
                v.push(script(s, run));
                v
            }
            CommandLine::Exec(v) => v.clone(),
        };
        let run_env = self.args.run_env();
        let mut env = st.env();
        for (k, v) in &run_env {
            if !env
                .iter()
                .any(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
            {
                env.push(format!("{k}={v}"));
            }
        }
        let created_by = if run_env.is_empty() {
            cmd.join(" ")
        } else {
            let pairs: Vec<String> = run_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("|{} {} {}", pairs.len(), pairs.join(" "), cmd.join(" "))
        };
        let mut from_containers = Vec::new();
        let r = self.run_with_mounts(st, run, cmd, env, &created_by, &mut from_containers);
        for c in from_containers {
            self.backend.remove(&c);
        }
        r
    }

    fn run_with_mounts(
        &mut self,
        st: &mut State,
        run: &Run,
        cmd: Vec<String>,
        env: Vec<String>,
        created_by: &str,
        from_containers: &mut Vec<String>,
    ) -> Result<(), BuildError> {
        let (mounts, mounts_key) = self.run_mounts(st, run, from_containers)?;
        let key = self.key(st.image.as_deref(), &["run", created_by, &mounts_key]);
        if self.cached(st, &key, Some(created_by))? {
            return Ok(());
        }
        let parent = self.base_image(st)?;
        let mut cc = st.config.config.clone().unwrap_or_default();
        cc.cmd = Some(cmd.clone());
        cc.entrypoint = Some(vec![]);
        cc.env = Some(env);
        cc.healthcheck = None;
        let cid = self.backend.create(&parent, &cc, true, &mounts)?;
        self.say(format!(" ---> Running in {}\n", short(&cid)));
        let (backend, table) = (self.backend, self.table);
        let stop = move || backend.cancelled() || table.stopped();
        let mut sink = StreamSink(self.out);
        let code = match self.backend.run(&cid, &mut sink, &stop) {
            Ok(c) => c,
            Err(e) => {
                self.backend.remove(&cid);
                return Err(e.into());
            }
        };
        if self.stopped() {
            self.backend.remove(&cid);
            return Err(BuildError::Cancelled);
        }
        if code != 0 {
            if self.opts.force_rm {
                self.backend.remove(&cid);
            }
            return Err(BuildError::NonZero {
                command: cmd.join(" "),
                code,
            });
        }
        let committed = self
            .backend
            .commit(&cid, &parent, st.config.clone(), created_by);
        if self.opts.rm || self.opts.force_rm {
            self.backend.remove(&cid);
            self.say(format!(
                " ---> Removed intermediate container {}\n",
                short(&cid)
            ));
        }
        let id = committed?;
        self.backend.cache_put(&key, &id)?;
        let img = self.backend.resolve_image(&id)?;
        st.config = img.config;
        st.image = Some(id.clone());
        self.say(format!(" ---> {}\n", short(&id)));
        Ok(())
    }
}

impl Builder<'_> {
    /// `WORKDIR`: the directory is made in the image when it is missing (a layer, as
    /// dockerd's classic builder makes it); else a metadata step.
    fn workdir_step(&mut self, st: &mut State, text: &str) -> Result<(), BuildError> {
        let key = self.key(st.image.as_deref(), &["workdir", text]);
        let layer_by = format!("{} #(nop) {text}", st.shell().join(" "));
        if self.cached(st, &key, Some(&layer_by))? {
            return Ok(());
        }
        let Some(parent) = st.image.clone() else {
            // scratch with no layer yet: the next container step makes the directory.
            return self.meta_commit(st, text);
        };
        let dir = st.workdir();
        let mut cc = st.config.config.clone().unwrap_or_default();
        cc.cmd = Some(vec!["#(nop) WORKDIR".into()]);
        cc.entrypoint = Some(vec![]);
        cc.healthcheck = None;
        let cid = self.backend.create(&parent, &cc, false, &[])?;
        let made = self
            .backend
            .rootfs(&cid)
            .map_err(BuildError::from)
            .and_then(|root| {
                if crate::copy::resolve(&root, &dir).is_ok() {
                    return Ok(false);
                }
                crate::copy::mkdir_all(&root, &dir, None)
                    .map(|_| true)
                    .map_err(|source| BuildError::Copy {
                        step: "WORKDIR",
                        source,
                    })
            });
        let id = match made {
            Ok(true) => {
                let r = self
                    .backend
                    .commit(&cid, &parent, st.config.clone(), &layer_by);
                self.backend.remove(&cid);
                r?
            }
            Ok(false) => {
                self.backend.remove(&cid);
                // An empty-layer entry with dockerd's text for WORKDIR (one space after
                // `#(nop)`). (meta_commit_as records its own key; this one is recorded too.)
                self.meta_commit_as(st, text, &layer_by)?;
                if let Some(id) = &st.image {
                    self.backend.cache_put(&key, id)?;
                }
                return Ok(());
            }
            Err(e) => {
                self.backend.remove(&cid);
                return Err(e);
            }
        };
        self.backend.cache_put(&key, &id)?;
        st.config = self.backend.resolve_image(&id)?.config;
        st.image = Some(id.clone());
        self.say(format!(" ---> {}\n", short(&id)));
        Ok(())
    }
}

/// A `RUN` in shell form with heredocs: a command that is only `<<EOF` runs the body as the
/// script; otherwise the bodies follow the command, as the shell reads heredocs.
fn script(cmd: &str, run: &Run) -> String {
    if run.heredocs.is_empty() {
        return cmd.to_string();
    }
    if let [h] = run.heredocs.as_slice() {
        let bare = cmd.trim().trim_start_matches("<<").trim_start_matches('-');
        if bare.trim_matches(['"', '\'']) == h.name {
            return h.content.clone();
        }
    }
    let mut s = cmd.to_string();
    s.push('\n');
    for h in &run.heredocs {
        s.push_str(&h.content);
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

/// A CMD/ENTRYPOINT as the image stores it (shell form through the SHELL).
fn command(c: &CommandLine, shell: &[String]) -> Vec<String> {
    match c {
        CommandLine::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
        CommandLine::Exec(v) => v.clone(),
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// An absolute path with `.`/`..`/doubled slashes resolved lexically.
pub(crate) fn clean_abs(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// A `Write` that turns a RUN's output into stream events.
struct StreamSink<'a, 'b>(&'a mut (dyn FnMut(Event) + 'b));

impl Write for StreamSink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)(Event::Stream(String::from_utf8_lossy(buf).into_owned()));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean_and_heredoc_scripts() {
        assert_eq!(clean_abs("/a/./b/../c//"), "/a/c");
        assert_eq!(clean_abs("/.."), "/");
        let df = crate::parse("FROM x\nRUN <<EOF\necho hi\nEOF\nRUN cat <<A\nx\nA\n").unwrap();
        let runs: Vec<Run> = df.stages[0]
            .instructions
            .iter()
            .filter_map(|i| match &i.node {
                Instruction::Run(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        let CommandLine::Shell(c0) = &runs[0].command else {
            panic!()
        };
        assert_eq!(script(c0, &runs[0]), "echo hi\n");
        let CommandLine::Shell(c1) = &runs[1].command else {
            panic!()
        };
        assert_eq!(script(c1, &runs[1]), "cat <<A\nx\nA\n");
    }
}
