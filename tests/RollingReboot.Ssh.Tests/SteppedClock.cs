using Microsoft.Extensions.Time.Testing;

namespace RollingReboot.Ssh.Tests;

/// <summary>
/// A fake clock that knows when timers are armed and fire, so a test can move time only while the code under
/// test is parked on a timer: the results then do not depend on thread scheduling.
/// </summary>
internal sealed class SteppedClock : FakeTimeProvider
{
    private static readonly TimeSpan s_step = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan s_safety = TimeSpan.FromSeconds(30);
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Signal)> _waiters = [];
    private int _created;
    private int _fired;

    public SteppedClock()
        : base(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(s =>
        {
            Interlocked.Increment(ref _fired);
            callback(s);
        }, state, dueTime, period);

        lock (_lock)
        {
            _created++;
            foreach (var waiter in _waiters.Where(w => _created >= w.Count).ToList())
            {
                waiter.Signal.TrySetResult();
                _waiters.Remove(waiter);
            }
        }

        return timer;
    }

    /// <summary>
    /// Runs the task to its end, or until <paramref name="pauseWhen"/> holds while it is parked. The code under test
    /// arms <paramref name="timersWhenFirstParked"/> timers before its first pause, then one more per pause: each
    /// round waits (by event, bounded) until it is parked on its next timer, then advances in 250 ms steps until a
    /// timer fires.
    /// </summary>
    public async Task<T?> RunAsync<T>(Task<T> task, int timersWhenFirstParked, Func<bool>? pauseWhen = null)
    {
        for (var round = 0; round < 10_000; round++)
        {
            await Task.WhenAny(task, TimerCreated(timersWhenFirstParked + round)).WaitAsync(s_safety);
            if (task.IsCompleted)
            {
                return await task;
            }

            if (pauseWhen?.Invoke() ?? false)
            {
                return default;
            }

            var fired = Volatile.Read(ref _fired);
            for (var step = 0; step < 100_000 && Volatile.Read(ref _fired) == fired; step++)
            {
                Advance(s_step);
            }
        }

        throw new InvalidOperationException("The task never finished.");
    }

    private Task TimerCreated(int count)
    {
        lock (_lock)
        {
            if (_created >= count)
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, signal));
            return signal.Task;
        }
    }
}
