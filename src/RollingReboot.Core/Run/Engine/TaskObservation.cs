namespace RollingReboot.Core.Run.Engine;

/// <summary>Reads started beside others whose result may go unused.</summary>
public static class TaskObservation
{
    /// <summary>Completes when <paramref name="task"/> does, never faulting: its exception (if any) counts as observed.</summary>
    public static Task Settled(this Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
}
