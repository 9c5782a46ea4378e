using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>The host's clock and SSH boot id just before its reboot; <see cref="Failure"/> when SSH refused us.</summary>
public sealed record RebootContext(DateTimeOffset ServerTime, string? BootId, StepResult? Failure = null);

/// <summary>
/// The proof that a host rebooted and is back: XAPI shows a boot time after the one recorded and after the request,
/// its toolstack started after the request, it is live; and SSH answers with a boot id other than the recorded one.
/// </summary>
public static class BootProof
{
    /// <summary>Read concurrently with the evacuation: both stay true until the reboot.</summary>
    public static async Task<RebootContext> CaptureAsync(RunContext run, HostState host, CancellationToken abort)
    {
        var serverTime = await run.Executor.ReadAsync(ct => run.Pool.GetServerTimeAsync(host.Uuid, ct), abort);
        if (run.Services.Probe is not { } probe || !run.Options.UseSshProof)
        {
            return new RebootContext(serverTime, null);
        }

        var answer = await probe.GetBootIdAsync(host.Name, host.Address, abort);
        return answer.Outcome is ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected
            ? new RebootContext(serverTime, null, new Stop($"SSH to {host.Name} failed before its reboot: {answer.Detail}"))
            : new RebootContext(serverTime, answer.BootId);
    }

    /// <summary>Waits (bounded by --host-timeout, or with --halt by --power-on-timeout and the window) for the proof,
    /// journals host.back.</summary>
    public static async Task<StepResult> AwaitAsync(RunContext run, HostState host, DateTimeOffset previousBoot, DateTimeOffset requestedAt, string? previousBootId, bool isMaster, CancellationToken abort)
    {
        var o = run.Options;
        var now = run.Clock.GetUtcNow();
        var deadline = now + o.HostTimeout;
        if (o.Halt)
        {
            // Someone has to power it on: up to --power-on-timeout, not past the window (but always a host timeout).
            var window = run.ClampToWindow(now + o.PowerOnTimeout);
            deadline = window > deadline ? window : deadline;
        }

        var sawDown = false;
        DateTimeOffset? xapiBackAt = null;
        // --halt: a member whose power_on_mode is set is powered on by the master (host.power_on runs on the master only,
        // message_forwarding.ml; the master itself, once down, has nobody to do it).
        var powerOn = o.Halt && !isMaster && o.PowerOnDelay is { } delay ? new PowerOnStep(run, host, delay) : null;
        // The SSH proof runs alongside the XAPI one: sshd answers early in the boot, long before xapi's toolstack is
        // up, so by the time XAPI shows the host back its new boot id is usually known and the host is acted on at once.
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(abort);
        var ssh = run.Services.Probe is { } probe && o.UseSshProof ? new SshWatch(run, probe, host, previousBootId) : null;
        var sshTask = ssh?.RunAsync(deadline, watching.Token) ?? Task.CompletedTask;
        try
        {
            return await WaitAsync();
        }
        finally
        {
            await watching.CancelAsync();
            await sshTask;
        }

        async Task<StepResult> WaitAsync()
        {
            // The host as the last change wait left it (null: read it).
            HostState? changed = null;
            while (true)
            {
                abort.ThrowIfCancellationRequested();
                var remaining = deadline - run.Clock.GetUtcNow();
                if (remaining <= TimeSpan.Zero)
                {
                    return new Stop(
                        o.Halt
                            ? $"{host.Name} was not powered on and back by {deadline:u} (--halt)"
                            : $"{host.Name} did not come back within {o.HostTimeout.TotalMinutes:0} min of its reboot",
                        NeedsOperator: true,
                        $"check {host.Name} (console / IPMI{(o.Halt ? "; power it on" : "")}); once it is back run 'rollreboot resume --clustername {run.ClusterLabel}' to finish, or 'rollreboot restore --clustername {run.ClusterLabel}'")
                    {
                        HostOnly = true,
                    };
                }

                try
                {
                    // Only this host is read while waiting for it: two small calls, not the whole pool; after a change
                    // wait, the host as that wait brought it (over XenAPI the event's own records, no call at all).
                    var h = changed ?? await run.Pool.ReadHostAsync(host.Uuid, abort);
                    changed = null;
                    sawDown |= !h.Live;
                    var powerOnIn = powerOn is null ? null : await powerOn.TickAsync(h, abort);
                    var newBoot = h.BootTime is { } b && b > previousBoot && b >= requestedAt.AddSeconds(-1);
                    var agentNew = h.AgentStartTime is { } a && a >= requestedAt.AddSeconds(-1);
                    if (newBoot && agentNew && h.Live)
                    {
                        if (xapiBackAt is null)
                        {
                            xapiBackAt = run.Clock.GetUtcNow();
                            run.Log.Info("{Host} is back in XAPI (boot time {Boot:u})", host.Name, h.BootTime);
                        }

                        var proof = ssh is null ? Continue : ssh.Verdict(xapiBackAt.Value);
                        if (proof is not null)
                        {
                            if (proof.IsContinue)
                            {
                                run.Executor.Record(new HostBack(host.Uuid, h.BootTime?.ToUnixTimeMilliseconds()));
                            }

                            return proof;
                        }
                    }

                    if (xapiBackAt is not null)
                    {
                        // XAPI has it back but sshd does not answer yet: nothing in XAPI will change, so poll SSH.
                        await Task.Delay(Min(remaining, TimeSpan.FromSeconds(1)), run.Clock, abort);
                    }
                    else
                    {
                        // Wait for the next change (event.from), bounded (and not past the moment to power the host on).
                        var wait = Min(remaining, TimeSpan.FromSeconds(30));
                        changed = await run.Pool.WaitForHostChangeAsync(host.Uuid, powerOnIn is { } p ? Min(wait, p) : wait, abort);
                    }
                }
                catch (PoolOperationException e) when (e.IsTransient)
                {
                    // The master is rebooting (or its toolstack is starting): keep asking, bounded.
                    if (!isMaster && !sawDown)
                    {
                        run.Log.Warn("Pool unreachable while waiting for {Host}: {Error}", host.Name, e.Message);
                    }

                    await Task.Delay(Min(remaining, TimeSpan.FromSeconds(2)), run.Clock, abort);
                }
            }
        }
    }

    /// <summary>
    /// Asks the host's sshd for its boot id every second from the reboot request until it shows a new one or refuses
    /// us. <see cref="Verdict"/> turns what it saw into the SSH half of the proof once XAPI shows the host back.
    /// </summary>
    private sealed class SshWatch(RunContext run, IHostProbe probe, HostState host, string? previousBootId)
    {
        private readonly Lock _lock = new();
        private bool _newBoot;
        private ProbeResult? _refused;
        private DateTimeOffset? _oldIdAt;

        public async Task RunAsync(DateTimeOffset deadline, CancellationToken cancellationToken)
        {
            try
            {
                while (!cancellationToken.IsCancellationRequested && run.Clock.GetUtcNow() < deadline)
                {
                    // Stamped when asked, not when answered: a slow answer from the old system must not look newer than XAPI's news.
                    var asked = run.Clock.GetUtcNow();
                    var result = await probe.GetBootIdAsync(host.Name, host.Address, cancellationToken);
                    lock (_lock)
                    {
                        switch (result.Outcome)
                        {
                            case ProbeOutcome.Answered when result.BootId is { Length: > 0 } id && id != previousBootId:
                                _newBoot = true;
                                run.Log.Info("{Host} answers over SSH with a new boot id", host.Name);
                                return;
                            case ProbeOutcome.Answered:
                                // Still the old system (not down yet), or, once XAPI has it back, one that did not reboot.
                                _oldIdAt = asked;
                                break;
                            case ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected:
                                _refused = result;
                                return;
                        }
                    }

                    await Task.Delay(TimeSpan.FromSeconds(1), run.Clock, cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
        }

        /// <summary>Continue once SSH showed a new boot; Stop when it refused us, or showed the old boot id after XAPI
        /// had the host back; null while it does not answer yet.</summary>
        public StepResult? Verdict(DateTimeOffset xapiBackAt)
        {
            lock (_lock)
            {
                if (_newBoot)
                {
                    return Continue;
                }

                if (_refused is { } refused)
                {
                    return new Stop($"SSH to {host.Name} after its reboot: {refused.Detail}", NeedsOperator: true,
                        $"fix SSH access to {host.Name} (key or known_hosts), then 'rollreboot resume --clustername {run.ClusterLabel}'");
                }

                return _oldIdAt >= xapiBackAt
                    ? new Stop($"{host.Name} answers over SSH with the boot id it had before the reboot: it did not reboot", NeedsOperator: true,
                        $"check {host.Name}; then 'rollreboot resume --clustername {run.ClusterLabel}'")
                    : null;
            }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// --halt with a power_on_mode: once XAPI has the host down (host.power_on needs host_metrics.live false:
    /// xapi_host_helpers.ml valid_operations, HOST_IS_LIVE) and --power-on-delay has passed, the master powers it on, once
    /// (xapi_host.ml power_on: the power-on plugin for wake-on-lan, iLO, DRAC or a custom mode). Without a mode
    /// (HOST_POWER_ON_MODE_DISABLED) or when the call fails, someone powers it on, as without the option.
    /// </summary>
    private sealed class PowerOnStep(RunContext run, HostState host, TimeSpan delay)
    {
        private DateTimeOffset? _downAt;
        private bool _over;

        /// <summary>How long until it acts; null when it has nothing more to do.</summary>
        public async Task<TimeSpan?> TickAsync(HostState now, CancellationToken abort)
        {
            if (_over || now.Live)
            {
                return null;
            }

            if (now.PowerOnMode is not { Length: > 0 } mode)
            {
                _over = true;
                run.Log.Warn("{Host} has no power_on_mode: XAPI cannot power it on (xe host-set-power-on-mode); power it on by hand", host.Name);
                return null;
            }

            var t = run.Clock.GetUtcNow();
            _downAt ??= t;
            var due = _downAt.Value + delay;
            if (t < due)
            {
                return due - t;
            }

            _over = true;
            try
            {
                await run.Executor.DoAsync(new PowerOnIntended(host.Uuid, host.Name, mode), ct => run.Pool.PowerOnHostAsync(host.Uuid, ct), new PowerOnDone(host.Uuid), abort);
                run.Log.Info("{Host} powered on by the pool master (host.power_on, power_on_mode {Mode})", host.Name, mode);
            }
            catch (PoolOperationException e) when (e.Code == "HOST_IS_LIVE")
            {
                // Someone (or the BMC) was quicker: it is coming up.
                run.Executor.Record(new PowerOnDone(host.Uuid));
            }
            catch (PoolOperationException e)
            {
                run.Log.Warn("host.power_on of {Host} failed ({Error}): power it on by hand (IPMI / iLO); still waiting", host.Name, e.Message);
                run.Notify("host.halted", $"{host.Name} of {run.ClusterLabel} could not be powered on through XAPI ({e.Code}): power it on by hand", host.Name);
            }

            return null;
        }
    }
}
