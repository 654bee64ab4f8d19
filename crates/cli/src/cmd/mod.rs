//! Command implementations.

pub mod auth;
pub mod build;
pub mod container;
pub mod df;
pub mod image;
pub mod network;
pub mod run;
pub mod system;
pub mod volume;

use crate::args::{Matches, Spec};
use crate::{CmdResult, Ctx};

/// Runs the command `name` with parsed matches.
pub fn dispatch(ctx: &Ctx, _spec: &Spec, name: &str, m: &Matches) -> CmdResult {
    match name {
        "run" => run::run(ctx, m),
        "create" => run::create(ctx, m),
        "start" => run::start(ctx, m),
        "attach" => run::attach(ctx, m),
        "exec" => run::exec(ctx, m),
        "ps" => container::ps(ctx, m),
        "stop" => container::stop(ctx, m),
        "restart" => container::restart(ctx, m),
        "kill" => container::kill(ctx, m),
        "rm" => container::rm(ctx, m),
        "logs" => container::logs(ctx, m),
        "inspect" | "container inspect" | "image inspect" => container::inspect(ctx, m),
        "top" => container::top(ctx, m),
        "stats" => container::stats(ctx, m),
        "pause" => container::pause(ctx, m),
        "unpause" => container::unpause(ctx, m),
        "rename" => container::rename(ctx, m),
        "wait" => container::wait(ctx, m),
        "cp" => container::cp(ctx, m),
        "diff" => container::diff(ctx, m),
        "export" => container::export(ctx, m),
        "commit" => container::commit(ctx, m),
        "port" => container::port(ctx, m),
        "update" => container::update(ctx, m),
        "container prune" => container::container_prune(ctx, m),
        "images" => image::images(ctx, m),
        "pull" => image::pull(ctx, m),
        "push" => image::push(ctx, m),
        "build" => build::build(ctx, m),
        "load" => image::load(ctx, m),
        "save" => image::save(ctx, m),
        "import" => image::import(ctx, m),
        "tag" => image::tag(ctx, m),
        "rmi" => image::rmi(ctx, m),
        "history" => image::history(ctx, m),
        "image prune" => image::image_prune(ctx, m),
        "info" => system::info(ctx, m),
        "version" => system::version(ctx, m),
        "events" => system::events(ctx, m),
        "system df" => df::df(ctx, m),
        "system prune" => system::prune(ctx, m),
        "builder prune" => system::builder_prune(ctx, m),
        "network create" => network::create(ctx, m),
        "network ls" => network::ls(ctx, m),
        "network inspect" => network::inspect(ctx, m),
        "network rm" => network::rm(ctx, m),
        "network prune" => network::prune(ctx, m),
        "network connect" => network::connect(ctx, m),
        "network disconnect" => network::disconnect(ctx, m),
        "volume create" => volume::create(ctx, m),
        "volume ls" => volume::ls(ctx, m),
        "volume inspect" => volume::inspect(ctx, m),
        "volume rm" => volume::rm(ctx, m),
        "volume prune" => volume::prune(ctx, m),
        "login" => auth::login(ctx, m),
        "logout" => auth::logout(ctx, m),
        other => Err(crate::fail(
            125,
            format!("berth: unknown command: berth {other}"),
        )),
    }
}

/// `volume inspect` / `network inspect`: `GET {base}/{name}` for each argument, printed as
/// every inspect prints; the names that failed are reported after the others.
pub fn inspect_each(ctx: &Ctx, m: &Matches, base: &str) -> CmdResult {
    let tmpl = crate::output::inspect_template(m.value("format"))?;
    let mut objs = Vec::new();
    let mut failed = Vec::new();
    for name in &m.args {
        match ctx
            .client
            .get_json(&format!("{base}/{}", crate::http::enc(name)))
        {
            Ok(v) => objs.push(v),
            Err(e) => failed.push(e.to_string()),
        }
    }
    crate::output::print_inspect(tmpl.as_ref(), objs)?;
    run::finish_multi(failed)
}
