"""Pull, compare, start `<runtime>-next`, wait for health, swap or roll back; Watchtower; channels.

Rules:
- the image to run is the env file's repository (`FLAGEEMONITOR_IMAGE` without its tag) with the
  tag the config names (`PARAM_IMAGE_TAG`, from the network's channel on the server: `stable`,
  `canary`, or a pinned version / digest); a config without it runs `FLAGEEMONITOR_IMAGE` itself;
- a pinned runtime runs by digest (`repo@sha256:…`, a version tag resolved when pulled) and is
  labelled `watchtower.enable=false`: Watchtower never moves it (it only looks at enabled
  containers, and leaves digest references alone); any other runtime runs the channel's tag and
  Watchtower follows that tag;
- a channel change reaches the host through the state directory: the daemon writes the validated
  config there, and `<runtime>-channel` (this engine in a companion container with the engine
  socket, created by `update-image`) reads it every `FLAGEEMONITOR_CHANNEL_INTERVAL` seconds and,
  when it names another reference than the runtime was created for, runs the same gated update
  (no visit to the host); `flageemonitor-update-image` does the same at once;
- engine runs on one host are serialised by a lock file in the state directory (the wrapper's,
  the hold's and the channel follower's);
- the running runtime is replaced only by a container that became healthy; until then it keeps
  running, so both daemons overlap for the health wait plus the old one's stop (measured and
  printed on every swap);
- a release that never becomes healthy is rolled back: the new container is removed, the image
  tag points at the running image again, Watchtower is stopped (it has no health gate) and a
  hold container polls for another image; once one runs healthy, Watchtower runs again;
- the same image and the same settings change nothing (`runtime unchanged`);
- the state directory is given to the image's user once, when a root install is upgraded.
Exit codes: 0 done, 1 error (the message says which), 2 rolled back.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.utils import parse_repository_tag

from flageemonitor.core.image_channel import ChannelInvalid, ImageChannel, from_config, image_reference, repository
from flageemonitor.deploy.host.settings import ENGINE_REGISTRY_DIR, ENGINE_STATE_DIR, HostSettings
from flageemonitor.deploy.host.specs import (
    REF_LABEL,
    ROLE_LABEL,
    SPEC_LABEL,
    ContainerSpec,
    channel_spec,
    hold_spec,
    one_shot_spec,
    runtime_spec,
    watchtower_spec,
)

EXIT_OK, EXIT_ERROR, EXIT_ROLLED_BACK = 0, 1, 2
POLL_SECONDS = 1.0
CONFIG_NAME = "config_bot.json"
LOCK_NAME = ".flageemonitor-host.lock"


class Outcome(enum.Enum):
    STARTED = "started"
    UNCHANGED = "unchanged"
    SWAPPED = "swapped"
    UNHEALTHY = "unhealthy"  # a first start that never became healthy
    ROLLED_BACK = "rolled back"
    HELD = "held"  # the registry still serves the image that was rolled back


class EngineError(RuntimeError):
    """An engine call failed in a way the engine cannot recover from; one line for the operator."""


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class Engine:
    def __init__(self, client: docker.DockerClient, settings: HostSettings,
                 say: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.s = settings
        self.say = say or (lambda msg: print(f"flageemonitor-host: {msg}", file=sys.stderr, flush=True))
        self.held_image = ""  # set by a rollback: the image that never became healthy
        self.state_dir = Path(ENGINE_STATE_DIR)

    # ---- small engine helpers ------------------------------------------------------------

    def get(self, name: str) -> Container | None:
        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None

    def pull(self, ref: str, *, local_fallback: bool = True) -> str:
        """Pulls `ref` and returns its image ID; the local copy when the registry cannot be reached
        (unless `local_fallback` is off: a hold must see what the registry serves, nothing else)."""
        repo, tag = parse_repository_tag(ref)
        self.say(f"pulling {ref}")
        try:
            return str(self.client.images.pull(repo, tag=tag or "latest").id)
        except docker.errors.APIError as exc:
            if not local_fallback:
                raise EngineError(f"cannot pull {ref}: {exc.explanation or exc}") from None
            try:
                local = self.client.images.get(ref)
            except docker.errors.ImageNotFound:
                raise EngineError(f"cannot pull {ref} and no local copy exists (registry credentials? see "
                                  f"--registry-user): {exc.explanation or exc}") from None
            self.say(f"warning: pull of {ref} failed; using the local copy")
            return str(local.id)

    def registry_login(self) -> bool:
        return bool(self.s.registry_dir) and Path(ENGINE_REGISTRY_DIR, "config.json").is_file()

    def create(self, spec: ContainerSpec) -> Container:
        api = self.client.api
        host_config = api.create_host_config(
            binds=spec.binds,
            restart_policy={"Name": spec.restart} if spec.restart != "no" else None,
            network_mode=spec.network or None,
        )
        created = api.create_container(
            spec.image, command=spec.command or None, name=spec.name or None,
            environment=[f"{k}={v}" for k, v in spec.environment.items()],
            labels={**spec.labels, SPEC_LABEL: spec.digest}, host_config=host_config,
            stop_timeout=spec.stop_timeout, user=spec.user or None, detach=True,
        )
        return self.client.containers.get(created["Id"])

    def ensure_running(self, container: Container, why: str = "") -> None:
        container.reload()
        if container.status != "running":
            self.say(f"starting {container.name}{f' ({why})' if why else ''}")
            container.start()

    def wait_healthy(self, container: Container, timeout: float) -> bool:
        """The engine's health status when it reports one, else the image's HEALTHCHECK command
        run with exec (engines without health timers), else running for a moment."""
        test = (container.attrs.get("Config", {}).get("Healthcheck") or {}).get("Test") or ["NONE"]
        deadline = time.monotonic() + timeout
        running_since = 0.0
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs["State"]
            status = state.get("Status", "")
            if status in ("created", "restarting", "configured"):
                time.sleep(POLL_SECONDS)
                continue
            if status != "running":
                self.say(f"container {container.name} is {status}")
                return False
            running_since = running_since or time.monotonic()
            health = (state.get("Health") or {}).get("Status", "")
            if health == "healthy":
                return True
            if health == "unhealthy":
                self.say(f"container {container.name} reports unhealthy")
                return False
            if test[0] in ("CMD", "CMD-SHELL"):
                cmd = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
                if container.exec_run(cmd).exit_code == 0:
                    return True
            elif time.monotonic() - running_since > 2:
                return True
            time.sleep(POLL_SECONDS)
        self.say(f"container {container.name} did not become healthy within {timeout:.0f}s")
        return False

    def show_logs(self, container: Container, what: str) -> None:
        self.say(f"last lines of {what}:")
        for line in container.logs(tail=20).decode(errors="replace").splitlines():
            self.say(f"  {line}")

    # ---- the image channel -------------------------------------------------------------------

    def config_channel(self) -> ImageChannel | None:
        """The channel the proxy's last valid config names; None without a config or without the
        keys (a server before channels). An unreadable config is an error: guessing could move a
        pinned runtime."""
        path = self.state_dir / CONFIG_NAME
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read the image channel from {path}: {exc}") from None
        try:
            return from_config(data) if isinstance(data, dict) else None
        except ChannelInvalid as exc:
            raise EngineError(f"{path}: {exc}") from None

    def target(self) -> tuple[str, ImageChannel | None]:
        channel = self.config_channel()
        return image_reference(self.s.image, channel), channel

    def digest_reference(self, image_id: str, ref: str) -> str:
        """`repo@sha256:…` for a pulled image, so a pinned runtime cannot move with its tag; the tag
        itself when the engine knows no digest for it (Watchtower stays off it by label)."""
        repo = repository(ref)
        digests = sorted(d for d in self.client.images.get(image_id).attrs.get("RepoDigests") or []
                         if d.split("@", 1)[0] == repo)
        if not digests:
            self.say(f"warning: no registry digest known for {ref}; running it by tag")
            return ref
        if len(digests) == 1:
            return str(digests[0])
        # one image can carry several digests (pushed under other tags in another manifest format):
        # the one the registry serves for this tag is the pin
        served = f"{repo}@{self.served_digest(ref)}"
        return served if served in digests else str(digests[0])

    def served_digest(self, ref: str) -> str:
        """The manifest digest the registry serves for `ref` now (Docker Engine's distribution
        API); "" when the engine cannot say (podman 4's compatible API answers 404)."""
        try:
            return str(self.client.api.inspect_distribution(ref)["Descriptor"]["digest"])
        except (docker.errors.DockerException, KeyError, TypeError):
            return ""

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One engine run at a time on this host (the lock file lives in the shared state dir)."""
        if not self.state_dir.is_dir():
            yield
            return
        with open(self.state_dir / LOCK_NAME, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---- state ownership --------------------------------------------------------------------

    def fix_state_ownership(self, image_id: str) -> None:
        """Gives the mounted state directory to the image's user (once: entries already owned
        by it are left alone). Images that run as root need nothing."""
        user = str(self.client.images.get(image_id).attrs.get("Config", {}).get("User") or "")
        uid_text, _, gid_text = user.partition(":")
        if not uid_text.isdigit() or int(uid_text) == 0:
            return
        uid, gid = int(uid_text), int(gid_text) if gid_text.isdigit() else int(uid_text)
        root = Path(ENGINE_STATE_DIR)
        if not root.is_dir():
            return
        changed = 0
        for path in [root, *root.rglob("*")]:
            st = path.lstat()
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.lchown(path, uid, gid)
                changed += 1
        if changed:
            self.say(f"state directory: {changed} entries given to {uid}:{gid}, the image's user "
                     "(an install that ran as root)")

    # ---- the runtime ------------------------------------------------------------------------

    def pinned_digest(self, ref: str, channel: ImageChannel | None) -> str:
        """The digest reference the runtime already runs for this pin, if it does: a version pin is
        resolved once per host and kept, even if someone re-pushes the tag."""
        current = self.get(self.s.runtime)
        if channel is None or not channel.pinned or current is None or current.labels.get(REF_LABEL) != ref:
            return ""
        running = str(current.attrs["Config"]["Image"])
        return running if "@" in running else ""

    def update_runtime(self, held: str = "") -> Outcome:
        s = self.s
        ref, channel = self.target()
        if channel is not None:
            self.say(f"channel {channel.describe()}: {ref}")
        kept = self.pinned_digest(ref, channel)
        new_id = self.pull(kept or ref, local_fallback=not held)
        if held and new_id == held:
            self.say(f"the registry still serves {short(new_id)}, the image that was rolled back")
            return Outcome.HELD
        pinned = channel is not None and channel.pinned
        run_ref = kept or ref
        if channel and pinned and not kept and not channel.by_digest:
            run_ref = self.digest_reference(new_id, ref)
        spec = runtime_spec(s, image=run_ref, requested=ref, channel=channel.describe() if channel else "",
                            watchtower=not pinned)
        leftover = self.get(s.next_name)
        if leftover is not None:
            self.say(f"removing {s.next_name} left over from an interrupted update")
            leftover.remove(force=True)
        current = self.get(s.runtime)
        if current is None:
            self.fix_state_ownership(new_id)
            self.say(f"starting {s.runtime} ({short(new_id)})")
            container = self.create(spec)
            container.start()
            if not self.wait_healthy(container, s.health_timeout):
                self.show_logs(container, s.runtime)
                self.say(f"error: {s.runtime} is not healthy; see: flageemonitor-logs --tail 100")
                return Outcome.UNHEALTHY
            self.say(f"{s.runtime} is running and healthy")
            return Outcome.STARTED
        cur_id = str(current.attrs["Image"])
        if cur_id == new_id and current.labels.get(SPEC_LABEL) == spec.digest:
            self.ensure_running(current, "image unchanged")
            self.say(f"runtime unchanged (image {short(new_id)})")
            return Outcome.UNCHANGED
        if cur_id == new_id:
            self.say(f"runtime settings changed: replacing {s.runtime}")
        else:
            self.say(f"new image {short(new_id)} (running {short(cur_id)}): starting it as {s.next_name}")
        self.fix_state_ownership(new_id)
        nxt = self.create(spec.named(s.next_name))
        nxt.start()
        started = time.monotonic()
        if self.wait_healthy(nxt, s.health_timeout):
            healthy_after = time.monotonic() - started
            current.stop(timeout=spec.stop_timeout)
            overlap = time.monotonic() - started
            current.remove(force=True)
            nxt.rename(s.runtime)
            self.say(f"{s.runtime} now runs image {short(new_id)}; both daemons ran together for "
                     f"{overlap:.1f}s (healthy after {healthy_after:.1f}s, then the old one stopped)")
            return Outcome.SWAPPED
        self.show_logs(nxt, "the new container")
        nxt.remove(force=True)
        if cur_id != new_id and str(current.attrs["Config"]["Image"]) == ref and "@" not in ref:
            # the same tag moved: keep it on the image that runs, so the host stays consistent
            repo, tag = parse_repository_tag(ref)
            self.client.images.get(cur_id).tag(repo, tag or "latest")
        self.ensure_running(current)
        self.held_image = new_id
        self.say(f"ROLLED BACK: the new image never became healthy; {s.runtime} keeps running image "
                 f"{short(cur_id)}")
        return Outcome.ROLLED_BACK

    # ---- Watchtower and the hold --------------------------------------------------------------

    def ensure_watchtower(self, *, start: bool = True) -> None:
        s = self.s
        spec = watchtower_spec(s, registry_login=self.registry_login())
        wt_id = self.pull(s.watchtower_image)
        current = self.get(s.watchtower_name)
        if current is not None:
            if current.labels.get(SPEC_LABEL) == spec.digest and str(current.attrs["Image"]) == wt_id:
                if start:
                    self.ensure_running(current)
                self.say(f"{s.watchtower_name} present and up to date")
                return
            self.say(f"replacing {s.watchtower_name} (image or settings changed)")
            current.remove(force=True)
        else:
            self.say(f"starting {s.watchtower_name}")
        container = self.create(spec)
        if start:
            container.start()

    def remove_hold(self) -> None:
        hold = self.get(self.s.hold_name)
        if hold is not None:
            self.say(f"removing {self.s.hold_name}: this update replaces it")
            hold.remove(force=True)

    def start_hold(self) -> None:
        s = self.s
        watchtower = self.get(s.watchtower_name)
        if watchtower is not None:
            watchtower.stop()
        host_env_file = os.environ.get("FLAGEEMONITOR_HOST_ENV_FILE", "")
        runtime = self.get(s.runtime)
        if not host_env_file or runtime is None:
            self.say(f"Watchtower ({s.watchtower_name}) is stopped so it does not deploy that image;")
            self.say("publish a fixed image, then run flageemonitor-update-image again.")
            return
        self.remove_hold()
        spec = hold_spec(s, image_id=str(runtime.attrs["Image"]), held=self.held_image,
                         host_env_file=host_env_file, registry_login=self.registry_login())
        self.create(spec).start()
        self.say(f"Watchtower ({s.watchtower_name}) is stopped so it does not deploy that image; "
                 f"{s.hold_name} checks every {s.hold_interval}s for another image and, once one runs "
                 "healthy, starts Watchtower again (or run flageemonitor-update-image yourself)")

    # ---- commands -----------------------------------------------------------------------------

    def ensure_channel_follower(self) -> None:
        """`<runtime>-channel` present, running and up to date (the env file's image, as the wrapper
        runs the engine); it needs the env file's path on the host, which the wrapper passes."""
        s = self.s
        host_env_file = os.environ.get("FLAGEEMONITOR_HOST_ENV_FILE", "")
        if not host_env_file:
            self.say(f"warning: FLAGEEMONITOR_HOST_ENV_FILE is not set: {s.channel_name} not started "
                     "(channel changes then need flageemonitor-update-image)")
            return
        spec = channel_spec(s, image=s.image, host_env_file=host_env_file, registry_login=self.registry_login())
        try:
            image_id = str(self.client.images.get(s.image).id)
        except docker.errors.ImageNotFound:
            image_id = self.pull(s.image)
        current = self.get(s.channel_name)
        if current is not None:
            if current.labels.get(SPEC_LABEL) == spec.digest and str(current.attrs["Image"]) == image_id:
                self.ensure_running(current)
                return
            self.say(f"replacing {s.channel_name} (image or settings changed)")
            current.remove(force=True)
        else:
            self.say(f"starting {s.channel_name}: it moves {s.runtime} when the config names another image "
                     f"channel (checked every {s.channel_interval}s)")
        self.create(spec).start()

    def update_image(self) -> int:
        with self.locked():
            self.remove_hold()
            outcome = self.update_runtime()
            self.ensure_watchtower(start=outcome is not Outcome.ROLLED_BACK)
            self.ensure_channel_follower()
            if outcome is Outcome.ROLLED_BACK:
                self.start_hold()
                return EXIT_ROLLED_BACK
            return EXIT_ERROR if outcome is Outcome.UNHEALTHY else EXIT_OK

    def hold(self, held: str, stop: threading.Event | None = None) -> int:
        """Every hold interval: pull; an image other than `held` goes through the gated update;
        once a good image runs, Watchtower is started again and the hold container removes itself."""
        stop = stop or _stop_on_sigterm()
        self.say(f"holding: Watchtower stays stopped while the registry serves {short(held)}")
        while not stop.wait(self.s.hold_interval):
            try:
                with self.locked():
                    outcome = self.update_runtime(held=held)
                    if outcome in (Outcome.HELD, Outcome.ROLLED_BACK):
                        held = self.held_image or held
                        continue
                    self.ensure_watchtower()
            except (EngineError, docker.errors.DockerException) as exc:
                self.say(f"warning: {exc}; trying again in {self.s.hold_interval}s")
                continue
            self.say(f"a healthy image runs: {self.s.watchtower_name} is running again")
            me = self.get(self.s.hold_name)
            if me is not None:
                me.remove(force=True)  # the last act: this removes the container running it
            return EXIT_OK
        return EXIT_OK

    def follow(self, stop: threading.Event | None = None) -> int:
        """Every channel interval: when the config names another image reference than the runtime
        was created for, the gated update moves it. A move that rolled back is tried again only
        when the config changes or, every hold interval, when the registry serves another image."""
        stop = stop or _stop_on_sigterm()
        self.say(f"following the image channel of {self.state_dir / CONFIG_NAME} every {self.s.channel_interval}s")
        failed: tuple[str, str, float] | None = None  # (reference, image ID, when) of a rolled-back move
        while not stop.wait(self.s.channel_interval):
            try:
                with self.locked():
                    failed = self.follow_once(failed)
            except (EngineError, docker.errors.DockerException) as exc:
                self.say(f"warning: {exc}; trying again in {self.s.channel_interval}s")
        return EXIT_OK

    def follow_once(self, failed: tuple[str, str, float] | None) -> tuple[str, str, float] | None:
        s = self.s
        runtime = self.get(s.runtime)
        if runtime is None or self.get(s.hold_name) is not None:
            return failed  # nothing installed yet, or a hold is in charge after a rollback
        ref, _ = self.target()
        running = runtime.labels.get(REF_LABEL) or str(runtime.attrs["Config"]["Image"])
        if running == ref:
            return None
        held = ""
        if failed is not None and failed[0] == ref:
            if time.monotonic() - failed[2] < s.hold_interval:
                return failed
            held = failed[1]
        self.say(f"the config moves {s.runtime} from {running} to {ref}")
        outcome = self.update_runtime(held=held)
        if outcome is Outcome.ROLLED_BACK:
            self.say(f"the move to {ref} rolled back; {s.runtime} keeps {running}")
            return (ref, self.held_image, time.monotonic())
        if outcome is Outcome.HELD:
            return (ref, held, time.monotonic())
        if outcome is not Outcome.UNHEALTHY:
            self.ensure_watchtower()
        return None

    def update_config(self, args: list[str]) -> int:
        s = self.s
        current = self.get(s.runtime)
        if current is not None and current.status == "running":
            result = current.exec_run(["flageemonitor", "update-config", *args], demux=True)
            out, err = result.output if isinstance(result.output, tuple) else (result.output, None)
            sys.stdout.write((out or b"").decode(errors="replace"))
            sys.stderr.write((err or b"").decode(errors="replace"))
            if result.exit_code == 0:
                current.kill(signal="SIGHUP")  # the daemon re-reads its config file
            return int(result.exit_code or 0)
        if current is not None:
            image = str(current.attrs["Config"]["Image"])
        else:
            image = s.image
            try:
                self.client.images.get(image)
            except docker.errors.ImageNotFound:
                self.pull(image)
        image_id = str(self.client.images.get(image).id)
        self.fix_state_ownership(image_id)
        self.say(f"{s.runtime} is not running: refreshing the config with a one-shot container")
        container = self.create(one_shot_spec(s, image, ["update-config", *args]))
        try:
            container.start()
            code = int(container.wait()["StatusCode"])
            sys.stdout.write(container.logs(stdout=True, stderr=False).decode(errors="replace"))
            sys.stderr.write(container.logs(stdout=False, stderr=True).decode(errors="replace"))
        finally:
            container.remove(force=True)
        return code

    def explain_missing(self, name: str) -> int:
        """0 when the container exists; else why it may be missing and what to do (exit 1)."""
        if self.get(name) is not None:
            return EXIT_OK
        if name == self.s.watchtower_name:
            self.say(f"error: Watchtower ({name}) is missing: run flageemonitor-update-image "
                     "(or re-run the installer)")
            return EXIT_ERROR
        found = self.client.containers.list(all=True, filters={"label": f"{ROLE_LABEL}=runtime"})
        others = sorted(c.name for c in found)
        self.say(f"error: no container named '{name}'.")
        self.say("The wrappers select the runtime by FLAGEEMONITOR_RUNTIME_NAME in the env file.")
        if others:
            self.say(f"FlageeMonitor runtimes on this host: {' '.join(others)}. "
                     "Correct FLAGEEMONITOR_RUNTIME_NAME there.")
        else:
            self.say("No FlageeMonitor runtime exists on this host: run flageemonitor-update-image "
                     "(or re-run the installer).")
        return EXIT_ERROR


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop
