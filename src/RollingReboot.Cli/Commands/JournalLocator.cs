using RollingReboot.Core.Pool;

namespace RollingReboot.Cli.Commands;

/// <summary>Where runs keep their journals: <c>STATE_DIR/journals/POOL_UUID-RUN_ID.jsonl</c>, one per run.</summary>
internal static class JournalLocator
{
    public static string JournalsDirectory(string stateDir) => Path.Combine(stateDir, "journals");

    /// <summary>The journal of a new run (its directory is created, the file on the first line).</summary>
    public static FileJournalStore NewJournal(string stateDir, PoolSnapshot pool, string runId) =>
        new(Path.Combine(JournalsDirectory(stateDir), $"{pool.Uuid}-{runId}.jsonl"));

    /// <summary>The newest journal of this pool whose run did not end, for resume and restore.</summary>
    /// <exception cref="UserFacingException">No unfinished run, or a journal that cannot be read or names another pool.</exception>
    public static (FileJournalStore Store, PreviousRun Run) FindOpenJournal(string stateDir, PoolSnapshot pool)
    {
        var dir = JournalsDirectory(stateDir);
        var files = Directory.Exists(dir) ? Directory.GetFiles(dir, pool.Uuid + "-*.jsonl").Order(StringComparer.Ordinal).Reverse().ToList() : [];
        foreach (var file in files)
        {
            var store = new FileJournalStore(file);
            var run = RunInvoker.ReadJournal(store);
            if (run.PoolUuid != pool.Uuid)
            {
                throw new UserFacingException($"journal {file} belongs to pool {run.PoolUuid}, not {pool.Name} ({pool.Uuid})");
            }

            if (!run.Ended)
            {
                return (store, run);
            }
        }

        throw new UserFacingException($"no unfinished run of pool {pool.Name} in {dir}: nothing to resume or restore");
    }
}
