// The floor under plumb's VERSION, for bench/cni_bench.sh: an empty C++ program, linked
// dynamically against libstdc++ as a C++ program ordinarily is, exec'd through the same
// launcher as the plugins. Whatever plumb's VERSION takes beyond this is plumb's own.
int main() { return 0; }
