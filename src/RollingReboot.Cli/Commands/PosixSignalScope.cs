using System.Runtime.InteropServices;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// SIGINT/SIGTERM during a run: the first asks it to stop at a safe point (work in flight finishes, then the pool
/// is restored), the second stops waiting for work in flight. Neither cuts the restore short.
/// </summary>
internal static class PosixSignalScope
{
    /// <param name="run">The run, given the stop token (first signal) and the abort token (second signal).</param>
    public static async Task<T> RunWithSignalsAsync<T>(Func<CancellationToken, CancellationToken, Task<T>> run, IRunLog log, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var abort = new CancellationTokenSource();
        var signals = 0;
        void OnSignal(PosixSignalContext c)
        {
            c.Cancel = true;
            if (Interlocked.Increment(ref signals) == 1)
            {
                log.Warn("Stop requested: finishing work in flight, then restoring (press Ctrl-C again to stop waiting for migrations; the restore still runs)");
                stop.Cancel();
            }
            else
            {
                log.Warn("Second stop request: no longer waiting for work in flight; restoring");
                abort.Cancel();
            }
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        return await run(stop.Token, abort.Token);
    }
}
