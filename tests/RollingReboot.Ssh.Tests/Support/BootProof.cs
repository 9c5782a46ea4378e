using RollingReboot.Core.Ports;

namespace RollingReboot.Ssh.Tests.Support;

/// <summary>The end of <see cref="BootProof.WaitForNewBootAsync(IHostProbe, string, string, string?, TimeSpan, TimeProvider, CancellationToken)"/>.</summary>
/// <param name="Proven">The host answered a boot id other than the previous one: it has rebooted and is back.</param>
/// <param name="LastProbe">The last probe's answer (the proof when <paramref name="Proven"/>).</param>
/// <param name="Attempts">How many probes ran.</param>
/// <param name="Elapsed">How long the wait took, on the given clock.</param>
public sealed record BootProofResult(bool Proven, ProbeResult LastProbe, int Attempts, TimeSpan Elapsed)
{
    /// <summary>The new boot id, when proven.</summary>
    public string? BootId => Proven ? LastProbe.BootId : null;

    /// <summary>The wait stopped because retrying cannot help (authentication failed or host key refused).</summary>
    public bool GaveUp => !Proven && LastProbe.Outcome is ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected;

    /// <summary>The wait ran out of time.</summary>
    public bool TimedOut => !Proven && !GaveUp;
}

/// <summary>
/// Test support: polls a host over SSH (bounded, backing off) until it answers a new boot id. The run's own proof is
/// RollingReboot.Core.Run.Steps.BootProof (XAPI and SSH together); this one lets the probe be tested across real sshd restarts.
/// </summary>
public static class BootProof
{
    /// <summary>The first pause between probes; it doubles after each probe up to <see cref="MaxDelay"/>.</summary>
    public static readonly TimeSpan InitialDelay = TimeSpan.FromSeconds(1);

    /// <summary>The longest pause between probes.</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Probes the host until it answers a boot id different from <paramref name="previousBootId"/> (any answer when
    /// that is null), with pauses of 1 s doubling to 10 s. Gives up at once on <see cref="ProbeOutcome.AuthFailed"/>
    /// and <see cref="ProbeOutcome.HostKeyRejected"/>; after <paramref name="timeout"/> returns with the last answer.
    /// A probe still running at the deadline is cancelled.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task<BootProofResult> WaitForNewBootAsync(
        IHostProbe probe,
        string hostName,
        string address,
        string? previousBootId,
        TimeSpan timeout,
        TimeProvider timeProvider,
        CancellationToken cancellationToken = default) =>
        WaitForNewBootAsync(probe, hostName, address, previousBootId, timeout, timeProvider, null, cancellationToken);

    /// <inheritdoc cref="WaitForNewBootAsync(IHostProbe, string, string, string?, TimeSpan, TimeProvider, CancellationToken)"/>
    /// <param name="progress">Told every probe's answer, e.g. to log the wait.</param>
    public static async Task<BootProofResult> WaitForNewBootAsync(
        IHostProbe probe,
        string hostName,
        string address,
        string? previousBootId,
        TimeSpan timeout,
        TimeProvider timeProvider,
        IProgress<ProbeResult>? progress,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);

        var start = timeProvider.GetTimestamp();
        var delay = InitialDelay;
        var attempts = 0;
        ProbeResult last = new(ProbeOutcome.HostDown, null, $"{hostName}: not probed yet");

        // One deadline for the whole wait: it cancels a probe still running, or the pause, when time is up.
        using var deadline = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        try
        {
            while (true)
            {
                attempts++;
                last = await probe.GetBootIdAsync(hostName, address, linked.Token).ConfigureAwait(false);
                progress?.Report(last);
                switch (last.Outcome)
                {
                    case ProbeOutcome.Answered when previousBootId is null
                        || !string.Equals(last.BootId, previousBootId, StringComparison.OrdinalIgnoreCase):
                        return new BootProofResult(true, last, attempts, timeProvider.GetElapsedTime(start));
                    case ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected:
                        return new BootProofResult(false, last, attempts, timeProvider.GetElapsedTime(start));
                    default:
                        break;
                }

                await Task.Delay(delay, timeProvider, linked.Token).ConfigureAwait(false);
                delay = delay * 2 < MaxDelay ? delay * 2 : MaxDelay;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            return TimedOut(last, attempts, timeProvider.GetElapsedTime(start), timeout);
        }
    }

    private static BootProofResult TimedOut(ProbeResult last, int attempts, TimeSpan elapsed, TimeSpan timeout)
    {
        var why = last.Outcome == ProbeOutcome.Answered
            ? $"still in the previous boot ({last.BootId})"
            : $"last probe: {last.Outcome}: {last.Detail}";
        return new BootProofResult(false, last with { Detail = $"no new boot within {timeout} after {attempts} probes; {why}" }, attempts, elapsed);
    }
}
