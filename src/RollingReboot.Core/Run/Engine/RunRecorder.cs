using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;

namespace RollingReboot.Core.Run.Engine;

/// <summary>
/// The one place where the run's state changes: each event is written to the journal first, then applied. So the
/// state in memory is the fold of the journal by construction; a write that fails leaves both as they were.
/// </summary>
public sealed class RunRecorder(IJournalStore store, TimeProvider clock, RunState initial)
{
    private readonly Lock _lock = new();
    private RunState _state = initial;

    public RunState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    public void Append(RunEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        lock (_lock)
        {
            var at = clock.GetUtcNow();
            store.Append(RunJournal.Serialize(e, at));
            _state = _state.Apply(e with { At = at });
        }
    }
}
