/* Thin C driver around libfann 2.2 for benchmarks/contenders/fann_c.py.
 * Compiled at run time (gcc) into _build/, once with floatfann.h and once
 * with doublefann.h (-DFB_DOUBLE).  Nothing of FANN goes into the package. */
#ifdef FB_DOUBLE
#include <doublefann.h>
#else
#include <floatfann.h>
#endif
#include <stdlib.h>
#include <string.h>

struct fann *fb_create(unsigned int num_layers, const unsigned int *sizes, float lr)
{
    struct fann *ann = fann_create_standard_array(num_layers, sizes);
    if (!ann) return NULL;
    fann_set_activation_function_hidden(ann, FANN_SIGMOID);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    /* FANN_SIGMOID is 1/(1+exp(-2 s x)); s = 0.5 gives the logistic sigmoid */
    fann_set_activation_steepness_hidden(ann, 0.5);
    fann_set_activation_steepness_output(ann, 0.5);
    fann_set_training_algorithm(ann, FANN_TRAIN_INCREMENTAL);
    fann_set_learning_rate(ann, lr);
    fann_set_learning_momentum(ann, 0.0f);
    fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);
    return ann;
}

unsigned int fb_total_connections(struct fann *ann) { return fann_get_total_connections(ann); }

/* Checks that connection c of the weight array is: layer l (1..L-1),
 * neuron i, input k (k == n_{l-1} is the bias neuron), in that nesting, where
 * neurons are numbered globally with one bias neuron closing every layer.
 * Returns the number of connections that do not follow this layout. */
unsigned int fb_check_layout(struct fann *ann, unsigned int num_layers, const unsigned int *sizes)
{
    unsigned int total = fann_get_total_connections(ann), bad = 0, c = 0, l, i, k;
    unsigned int first_prev = 0, first_cur;
    struct fann_connection *conn = malloc(sizeof(struct fann_connection) * total);
    fann_get_connection_array(ann, conn);
    for (l = 1; l < num_layers; l++) {
        first_cur = first_prev + sizes[l - 1] + 1;
        for (i = 0; i < sizes[l]; i++)
            for (k = 0; k <= sizes[l - 1]; k++, c++)
                if (c >= total || conn[c].from_neuron != first_prev + k ||
                    conn[c].to_neuron != first_cur + i)
                    bad++;
        first_prev = first_cur;
    }
    free(conn);
    return bad + (c != total);
}

void fb_set_weights(struct fann *ann, const fann_type *w)
{
    memcpy(ann->weights, w, sizeof(fann_type) * ann->total_connections);
}

void fb_get_weights(struct fann *ann, fann_type *w)
{
    memcpy(w, ann->weights, sizeof(fann_type) * ann->total_connections);
}

struct fann_train_data *fb_data(unsigned int n, unsigned int ni, unsigned int no,
                                const fann_type *X, const fann_type *Y)
{
    unsigned int s;
    struct fann_train_data *d = fann_create_train(n, ni, no);
    if (!d) return NULL;
    for (s = 0; s < n; s++) {
        memcpy(d->input[s], X + (size_t)s * ni, sizeof(fann_type) * ni);
        memcpy(d->output[s], Y + (size_t)s * no, sizeof(fann_type) * no);
    }
    return d;
}

void fb_free_data(struct fann_train_data *d) { fann_destroy_train(d); }

/* One epoch exactly as a FANN user runs it: fann_train_epoch, which for
 * FANN_TRAIN_INCREMENTAL calls fann_train (run, MSE, backprop, update) per sample. */
float fb_epoch(struct fann *ann, struct fann_train_data *d) { return fann_train_epoch(ann, d); }

void fb_forward(struct fann *ann, unsigned int n, unsigned int ni, unsigned int no,
                const fann_type *X, fann_type *out)
{
    unsigned int s;
    for (s = 0; s < n; s++) {
        fann_type *o = fann_run(ann, (fann_type *)(X + (size_t)s * ni));
        memcpy(out + (size_t)s * no, o, sizeof(fann_type) * no);
    }
}

void fb_destroy(struct fann *ann) { fann_destroy(ann); }
