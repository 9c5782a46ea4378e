using RollingReboot.Core.Run.Journal;

namespace RollingReboot.Cli;

/// <summary>An append-only journal file, flushed line by line, owner-only.</summary>
public sealed class FileJournalStore : IJournalStore
{
    private readonly Lock _lock = new();
    private bool _ready;

    public FileJournalStore(string path)
    {
        Path = path;
        // journals/ and the state directory above it: owner-only (they name pools, hosts and VMs).
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        OwnerOnly.Directory(dir, System.IO.Path.GetDirectoryName(dir));
    }

    public string Path { get; }

    /// <summary>Called with each line once it is on disk (--metrics-file follows the run this way).</summary>
    public Action<string>? Appended { get; set; }

    public void Append(string line)
    {
        lock (_lock)
        {
            if (!_ready)
            {
                OwnerOnly.File0600(Path);
                _ready = true;
            }

            using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
            using var writer = new StreamWriter(stream);
            writer.Write(line);
            writer.Write('\n');
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }

        Appended?.Invoke(line);
    }

    public IReadOnlyList<string> ReadAll()
    {
        lock (_lock)
        {
            return File.Exists(Path) ? File.ReadAllLines(Path) : [];
        }
    }
}
